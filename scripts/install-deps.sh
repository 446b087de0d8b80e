#!/bin/sh
# Install the Debian 12 packages that building, testing and linting sotto need.
# Run as root (or with sudo). Safe to run again: apt-get skips what is present.
set -eu

PACKAGES="
build-essential autoconf automake autoconf-archive libtool pkg-config
libssl-dev openssl libsodium-dev libevent-dev
libprotobuf-c-dev protobuf-c-compiler
libsqlite3-dev sqlite3 libedit-dev
libcriterion-dev
clang clang-format cppcheck mandoc
tmux procps time ca-certificates git
"

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $PACKAGES
