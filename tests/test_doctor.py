"""`recsaver doctor` (issue 15): the real checks on this install, a crashing child reported by its signal,
and the build check's reading of llama.cpp's system info."""

from __future__ import annotations

import json
import subprocess
import sys

from recsaver.doctor import run_probe
from recsaver.doctor.cpu import build_problems, llama_features

AMX_NATIVE = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
              "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | "
              "OPENMP = 1 | REPACK = 1 |")


def test_doctor_passes_on_this_install_with_a_real_generation() -> None:
    done = subprocess.run([sys.executable, "-m", "recsaver.cli", "doctor", "--json"], capture_output=True,
                          text=True, timeout=600)
    rows = {r["name"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows["llama.cpp build"]["status"] == "ok" and "AMX_INT8 = 1" not in rows["llama.cpp build"]["detail"]
    assert "AVX512 = 1" not in rows["llama.cpp build"]["detail"]  # the portable build
    assert rows["generation"]["status"] == "ok" and "tokens" in rows["generation"]["detail"]
    model = rows["model smollm2-135m"]
    assert model["status"] == "ok" and "sha256 b179c9523d0e6a0f" in model["detail"]
    assert {"python", "cpu", "torch", "wordnet (METEOR)", "bertscore encoder", "chromium"} <= set(rows)


def test_a_crashing_probe_is_reported_by_its_signal() -> None:
    result = run_probe([sys.executable, "-c", "import ctypes; ctypes.string_at(0)"])
    assert not result.ok and result.signal == "SIGSEGV" and "SIGSEGV" in result.detail


def test_build_check_reads_amx_and_features_the_cpu_lacks() -> None:
    features = llama_features(AMX_NATIVE)
    assert features["AMX_INT8"] and features["AVX2"] and not features.get("ARM_FMA", False)
    # an AVX2-only CPU: the AVX-512/AMX build dies with SIGILL there
    missing, host_specific = build_problems(features, {"avx", "avx2", "fma", "f16c", "bmi2", "pni", "ssse3"})
    assert set(missing) == {"AVX_VNNI", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_INT8"}
    assert "AMX_INT8" in host_specific
    portable = llama_features("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 |")
    assert build_problems(portable, {"avx", "avx2", "fma", "f16c", "bmi2", "pni", "ssse3"}) == ([], [])


def test_an_amx_build_fails_the_doctor_with_the_rebuild_fix(monkeypatch) -> None:
    import llama_cpp

    from recsaver.doctor.checks import check_llama_build

    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: AMX_NATIVE.encode())
    row = check_llama_build()
    assert row.status == "fail" and "AMX" in row.detail and "install_llama.sh" in row.fix
