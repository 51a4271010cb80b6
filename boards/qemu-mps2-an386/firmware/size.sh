#!/bin/sh
#! Prints the firmware's flash and RAM footprint against the budgets (see size.py).
# Usage: ./size.sh [elf] [linear-memory-bytes, default limits.memory-bytes]; build first with `cargo build --release`.
set -eu
cd "$(dirname "$0")"
exec python3 size.py "$@"
