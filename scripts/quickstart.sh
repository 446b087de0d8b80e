#!/bin/sh
# The README's main job: install the dependencies, build, and start sottod on
# the embedded default: SQLite and a self-signed certificate in ./sotto-state,
# listening on [::]:7443 (IPv6 and IPv4).  It runs in the foreground and logs
# to the terminal; Ctrl-C stops it cleanly.  Extra arguments go to sottod,
# for example: scripts/quickstart.sh --listen 127.0.0.1:7443 -d
set -eu
cd "$(dirname "$0")/.."

if [ "${SOTTO_SKIP_DEPS:-0}" != 1 ]; then
	scripts/install-deps.sh
fi
[ -x configure ] || ./bootstrap
mkdir -p build
(cd build && { [ -f Makefile ] || ../configure; } && make -j"$(nproc 2>/dev/null || echo 2)")

exec ./build/sottod --state-dir "${SOTTO_STATE_DIR:-./sotto-state}" "$@"
