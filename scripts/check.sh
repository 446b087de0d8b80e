#!/bin/sh
# The README's test command: install the dependencies, build, and run the whole
# test suite against real binaries.  Run from anywhere; builds in ./build.
set -eu
cd "$(dirname "$0")/.."

if [ "${SOTTO_SKIP_DEPS:-0}" != 1 ]; then
	scripts/install-deps.sh
fi
[ -x configure ] || ./bootstrap
mkdir -p build
cd build
[ -f Makefile ] || ../configure
jobs=$(nproc 2>/dev/null || echo 2)
make -j"$jobs"
# VERBOSE=1 prints the log of every failing test.
make -j"$jobs" check VERBOSE=1
