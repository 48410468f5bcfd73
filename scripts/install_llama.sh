#!/usr/bin/env bash
# Build and install llama-cpp-python with portable CPU flags, so the install runs on any machine of
# its kind, not only the one that built it.
#
# Why these flags: llama-cpp-python's default build compiles llama.cpp with -march=native. On a CPU
# that reports AMX the first generation then segfaults in ggml_backend_amx_mul_mat, and a wheel built
# on an AVX-512 machine dies with SIGILL on one without. We pin the x86-64-v3 level instead (AVX, AVX2,
# FMA, F16C, BMI2 -- every x86 server and desktop CPU since 2015), with AVX-512, AVX-VNNI and AMX off:
# those are host-specific, and AMX is the one that crashes. docs/benchmarks.md gives what this costs
# against a native build (benchmarks/llama_build.py). On non-x86 machines only GGML_NATIVE=OFF is set
# (llama.cpp's generic defaults for that architecture).
#
# The built wheel is kept under ~/.cache/recsaver/wheels/<flags hash>/, never in pip's own cache: pip
# keys its cache by version alone, so a wheel built once with -march=native would be reused silently.
#
#   scripts/install_llama.sh PIP            portable build (the default; what make install runs)
#   LLAMA_BUILD=host scripts/install_llama.sh PIP   portable + the AVX-512 / AVX-VNNI extensions this
#                                           CPU reports, AMX still off: faster here (docs/benchmarks.md),
#                                           but only for this machine; `recsaver doctor` warns about it
#   LLAMA_BUILD=native scripts/install_llama.sh PIP [--target DIR]   a -march=native build, for the
#                                           benchmark only (it compiles AMX in where the CPU has it)
set -euo pipefail
PIP=${1:?usage: install_llama.sh PATH/TO/pip [pip install options]}
shift
VERSION=0.3.36
MODE=${LLAMA_BUILD:-portable}
case "$(uname -m)" in
  x86_64|amd64) PORTABLE="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" ;;
  *) PORTABLE="-DGGML_NATIVE=OFF" ;;
esac
host_extensions() {  # the host-specific extensions this CPU has, as CMake flags (x86 only)
  local flags out=""
  flags=" $(grep -m1 -E '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  [[ "$flags" == *" avx_vnni "* ]] && out+=" -DGGML_AVX_VNNI=ON"
  if [[ "$flags" == *" avx512f "* && "$flags" == *" avx512bw "* && "$flags" == *" avx512vl "* ]]; then
    out+=" -DGGML_AVX512=ON"
    [[ "$flags" == *" avx512vbmi "* ]] && out+=" -DGGML_AVX512_VBMI=ON"
    [[ "$flags" == *" avx512_vnni "* ]] && out+=" -DGGML_AVX512_VNNI=ON"
    [[ "$flags" == *" avx512_bf16 "* ]] && out+=" -DGGML_AVX512_BF16=ON"
  fi
  printf '%s' "$out"
}
case "$MODE" in
  portable) FLAGS="-DLLAVA_BUILD=OFF $PORTABLE" ;;
  host) FLAGS="-DLLAVA_BUILD=OFF $PORTABLE$(host_extensions)" ;;  # later -D options win over PORTABLE's OFFs
  native) FLAGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=ON" ;;
  *) echo "LLAMA_BUILD must be portable, host or native, not '$MODE'" >&2; exit 2 ;;
esac
KEY=$(printf '%s %s %s' "$VERSION" "$(uname -m)" "$FLAGS" | sha256sum | cut -c1-16)
WHEELS=${RECSAVER_WHEELS:-$HOME/.cache/recsaver/wheels}/$KEY
if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "Building llama-cpp-python $VERSION ($MODE: $FLAGS); about 3-7 minutes on 2 cores..."
  mkdir -p "$WHEELS.tmp"
  CMAKE_ARGS="$FLAGS" "$PIP" wheel --quiet --no-deps --no-cache-dir --no-binary llama-cpp-python \
    "llama-cpp-python==$VERSION" -w "$WHEELS.tmp"
  printf '%s\n' "$FLAGS" > "$WHEELS.tmp/FLAGS"
  rm -rf "$WHEELS" && mv "$WHEELS.tmp" "$WHEELS"
fi
"$PIP" install --quiet --no-deps --force-reinstall "$@" "$WHEELS"/llama_cpp_python-*.whl
echo "llama-cpp-python $VERSION installed ($MODE build, flags in $WHEELS/FLAGS)"
