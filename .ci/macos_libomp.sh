#!/usr/bin/env bash
# cibuildwheel before-all on macOS: build LLVM's OpenMP runtime (libomp) for
# the wheel's architecture and deployment target, so that the wheel's
# extensions link against a libomp that runs on every macOS the wheel's tag
# claims (Homebrew's is built for the runner's own macOS version). delocate
# then copies it into the wheel (fastgmm/.dylibs/), and its licence is
# appended to LICENSE, which goes into the wheel's metadata.
#
# Prefix: $FASTGMM_LIBOMP_PREFIX (pyproject.toml points CPPFLAGS/LDFLAGS there).
set -euo pipefail
LLVM_VERSION=19.1.7
PREFIX=${FASTGMM_LIBOMP_PREFIX:?set by [tool.cibuildwheel.macos] environment}
ARCH=$(uname -m)    # built natively: one runner per architecture
TARGET=${MACOSX_DEPLOYMENT_TARGET:-10.13}
if [ "$ARCH" = arm64 ] && [ "${TARGET%%.*}" -lt 11 ]; then TARGET=11.0; fi
echo "libomp $LLVM_VERSION for $ARCH, macOS >= $TARGET, into $PREFIX"

SRC=$(mktemp -d)
BASE=https://github.com/llvm/llvm-project/releases/download/llvmorg-$LLVM_VERSION
for part in openmp cmake; do
    curl -fsSL "$BASE/$part-$LLVM_VERSION.src.tar.xz" | tar -xJ -C "$SRC"
done
# A standalone openmp build looks for LLVM's cmake modules in ../cmake.
mv "$SRC/cmake-$LLVM_VERSION.src" "$SRC/cmake"
cmake -S "$SRC/openmp-$LLVM_VERSION.src" -B "$SRC/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" \
    -DCMAKE_OSX_ARCHITECTURES="$ARCH" \
    -DCMAKE_OSX_DEPLOYMENT_TARGET="$TARGET" \
    -DLIBOMP_INSTALL_ALIASES=OFF \
    -DLIBOMP_OMPD_SUPPORT=OFF \
    -DLIBOMP_USE_HWLOC=OFF \
    -DOPENMP_ENABLE_LIBOMPTARGET=OFF
cmake --build "$SRC/build" --parallel
cmake --install "$SRC/build"
install_name_tool -id @rpath/libomp.dylib "$PREFIX/lib/libomp.dylib"
otool -l "$PREFIX/lib/libomp.dylib" | grep -A4 -E "LC_BUILD_VERSION|LC_VERSION_MIN" || true

# The licence of what the wheel bundles, once (before-all runs once per job).
if ! grep -q "LLVM OpenMP runtime (libomp)" LICENSE; then
    {
        printf '\n\n----\nThe macOS wheels of fastgmm bundle the LLVM OpenMP runtime (libomp) %s\n' "$LLVM_VERSION"
        printf '(fastgmm/.dylibs/libomp.dylib), distributed under the following licence:\n\n'
        cat "$SRC/openmp-$LLVM_VERSION.src/LICENSE.TXT"
    } >> LICENSE
fi
