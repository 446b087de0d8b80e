#!/bin/sh
# The README's main job: install the dependencies, build, and run sotto.
# Until the server lands this makes an Ed25519 identity key and prints its
# fingerprint; it asks for a passphrase on the terminal (empty is allowed).
set -eu
cd "$(dirname "$0")/.."

if [ "${SOTTO_SKIP_DEPS:-0}" != 1 ]; then
	scripts/install-deps.sh
fi
[ -x configure ] || ./bootstrap
mkdir -p build
(cd build && { [ -f Makefile ] || ../configure; } && make -j"$(nproc 2>/dev/null || echo 2)")

dir=${SOTTO_QUICKSTART_DIR:-./sotto-quickstart}
mkdir -p "$dir"
chmod 700 "$dir"
if [ ! -f "$dir/identity" ]; then
	./build/sotto-keygen -t ed25519 -f "$dir/identity"
fi
./build/sotto-keygen -l -v -f "$dir/identity.pub"
