"""CPU features as the kernel reports them, and as the installed llama.cpp build was compiled for."""

from __future__ import annotations

import platform
import re
from pathlib import Path

# llama.cpp's system-info names -> /proc/cpuinfo flags (x86). A build that uses a feature the CPU lacks
# dies with SIGILL; AMX is the one known to crash even where the CPU has it (ggml_backend_amx_mul_mat).
LLAMA_TO_CPUINFO = {
    "SSE3": "pni", "SSSE3": "ssse3", "AVX": "avx", "AVX2": "avx2", "F16C": "f16c", "FMA": "fma", "BMI2": "bmi2",
    "AVX_VNNI": "avx_vnni", "AVX512": "avx512f", "AVX512_VBMI": "avx512vbmi", "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16", "AMX_INT8": "amx_int8",
}
# Beyond x86-64-v3: what a portable build (scripts/install_llama.sh) leaves out.
HOST_SPECIFIC = ("AVX_VNNI", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_INT8")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The first processor's flags ('flags' on x86, 'Features' on ARM); empty where there is no cpuinfo."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def llama_features(system_info: str) -> dict[str, bool]:
    """`SSE3 = 1 | AVX = 1 | ...` from llama_print_system_info() as {name: on}."""
    return {name: value == "1" for name, value in re.findall(r"([A-Z0-9_]+) = (\d)", system_info)}


def build_problems(features: dict[str, bool], flags: set[str]) -> tuple[list[str], list[str]]:
    """(features compiled in that this CPU lacks, host-specific features compiled in)."""
    on = [name for name, value in features.items() if value and name in LLAMA_TO_CPUINFO]
    missing = [name for name in on if flags and LLAMA_TO_CPUINFO[name] not in flags]
    host_specific = [name for name in on if name in HOST_SPECIFIC]
    return missing, host_specific
