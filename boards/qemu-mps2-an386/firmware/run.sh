#!/bin/sh
#! Boots a firmware ELF under QEMU mps2-an386 and decodes its defmt log with defmt-print; exits with the firmware's status.
# Used as the cargo runner (.cargo/config.toml), so `cargo run --release` works; or by hand:
#   ./run.sh ../../../target/firmware/thumbv7em-none-eabihf/release/tern-fw-mps2-an386
set -eu
elf="$1"
command -v qemu-system-arm >/dev/null || { echo "run.sh: install QEMU: apt-get install qemu-system-arm" >&2; exit 2; }
command -v defmt-print >/dev/null || { echo "run.sh: install the decoder: cargo install defmt-print --locked" >&2; exit 2; }
status_file=$(mktemp)
trap 'rm -f "$status_file"' EXIT
# The firmware ends every run with a semihosting exit, so QEMU returns its status;
# the timeout only guards against a firmware that hangs before it.
{ timeout 120 qemu-system-arm -M mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -kernel "$elf"; echo $? >"$status_file"; } \
  | defmt-print -e "$elf"
status=$(cat "$status_file")
echo "qemu exit status: $status" >&2
exit "$status"
