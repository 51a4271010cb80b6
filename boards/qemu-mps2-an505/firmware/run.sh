#!/bin/sh
#! Cargo runner of the firmware: boots the ELF under QEMU through `cargo xtask qemu` (decoded defmt log, the firmware's exit status).
# `cargo run --release` here ends up in this script (.cargo/config.toml), and so does
# `cargo run` of any thumbv8m.main-none-eabihf binary from the repo root (the root's
# .cargo/config.toml). Arguments after the ELF go to `cargo xtask qemu`, e.g.
#   cargo run --release -- --server http://127.0.0.1:8080 --feed feed.bin
set -eu
[ $# -ge 1 ] || { echo "usage: $0 ELF [cargo xtask qemu options]" >&2; exit 2; }
elf=$1
shift
# Cargo may pass the ELF relative to where it was run; xtask runs from the repo root.
case $elf in
/*) ;;
*) elf="$PWD/$elf" ;;
esac
# Relative --feed/--workdir paths mean relative to here, not to the root.
TERN_CALLER_DIR=$PWD
export TERN_CALLER_DIR
cd "$(dirname "$0")/../../.."
# The root workspace's cargo (this folder's .cargo/config.toml would build xtask for
# the device). Not --quiet: building xtask, or waiting for another cargo's lock on the
# root target/, then shows instead of looking like a hang.
exec "${CARGO:-cargo}" run --package xtask -- qemu --board qemu-mps2-an505 "$@" "$elf"
