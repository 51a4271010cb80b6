#!/usr/bin/env python3
"""Footprint of the Tern firmware ELF: flash and RAM against the budgets, and the share of each crate."""
# Flash = .vector_table + .text + .rodata (+ .data's load image); RAM = .data + .bss
# + .uninit, where .bss holds the heap (its size is printed separately). The stack is
# not counted: cortex-m-rt puts it at the top of RAM, below which nothing is linked.
# Crate shares come from symbol sizes (`nm -S`): with LTO, inlined code is counted in
# its caller, so the split is indicative, and unnamed data goes to "(unattributed)".

import os
import re
import tomllib
import subprocess
import sys
from collections import defaultdict

KIB = 1024
FLASH_BUDGET = 512 * KIB
RAM_BUDGET_BASE = 128 * KIB  # plus the running component's linear memory
HEAP_SYMBOL = "heap::init::MEMORY"


def tool(names):
    for name in names:
        try:
            subprocess.run([name, "--version"], capture_output=True, check=True)
            return name
        except (OSError, subprocess.CalledProcessError):
            continue
    sys.exit(f"none of {names} found; apt-get install binutils-arm-none-eabi")


def sections(elf, size):
    out = subprocess.run([size, "-A", elf], capture_output=True, text=True, check=True).stdout
    result = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith(".") and parts[1].isdigit():
            result[parts[0]] = int(parts[1])
    return result


def crate_of(name):
    # `<wasmi::Foo as core::Bar>::f` belongs to wasmi; `_<T>` generics are skipped.
    name = name.lstrip("<&*").removeprefix("mut ").removeprefix("dyn ")
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    if not m:
        return "(anonymous constants, C, asm)"
    crate = m.group(1)
    groups = {
        "wasmi": "wasmi", "wasmi_ir": "wasmi", "wasmi_core": "wasmi", "wasmi_collections": "wasmi",
        "wasmparser": "wasmi (wasmparser)",
        "ed25519_dalek": "crypto", "curve25519_dalek": "crypto", "sha2": "crypto",
        "digest": "crypto", "subtle": "crypto", "block_buffer": "crypto",
        "tern_core": "tern-core", "tern_wasmi": "tern-wasmi",
        "postcard": "postcard+serde", "serde": "postcard+serde", "serde_core": "postcard+serde",
        "tern_fw_mps2_an386": "firmware", "defmt": "defmt", "defmt_semihosting": "defmt",
        "cortex_m": "cortex-m", "cortex_m_rt": "cortex-m", "cortex_m_semihosting": "cortex-m",
        "embedded_alloc": "allocator", "linked_list_allocator": "allocator",
        "core": "core+alloc", "alloc": "core+alloc", "compiler_builtins": "core+alloc",
    }
    return groups.get(crate, crate)


def shares(elf, nm, flash_bytes):
    out = subprocess.run([nm, "-C", "-S", "--size-sort", elf], capture_output=True, text=True, check=True).stdout
    per = defaultdict(int)
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4 or parts[2] not in "tTrR":
            continue
        per[crate_of(parts[3])] += int(parts[1], 16)
    per["(unattributed)"] = max(0, flash_bytes - sum(per.values()))
    return sorted(per.items(), key=lambda kv: -kv[1])


def heap_size(elf, nm):
    out = subprocess.run([nm, "-C", "-S", elf], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[3].endswith(HEAP_SYMBOL):
            return int(parts[1], 16)
    return 0


def main():
    default = "../../../target/firmware/thumbv7em-none-eabihf/release/tern-fw-mps2-an386"
    elf = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else default
    # Default: the board's largest linear memory, which is what the heap reserves.
    with open("../board.toml", "rb") as f:
        board_linear = tomllib.load(f)["limits"]["memory-bytes"]
    linear = int(sys.argv[2]) if len(sys.argv) > 2 else board_linear
    size = tool(["arm-none-eabi-size", "llvm-size"])
    nm = tool(["arm-none-eabi-nm", "llvm-nm"])
    s = sections(elf, size)
    text = s.get(".vector_table", 0) + s.get(".text", 0)
    rodata = s.get(".rodata", 0)
    data = s.get(".data", 0)
    flash = text + rodata + data
    heap = heap_size(elf, nm)
    ram = data + s.get(".bss", 0) + s.get(".uninit", 0)
    static_ram = ram - heap

    print(f"ELF: {elf}")
    print(f"flash: {flash:>8} bytes ({flash / KIB:6.1f} KiB) = .text {text} + .rodata {rodata} + .data {data}"
          f"   budget {FLASH_BUDGET // KIB} KiB: {'OK' if flash <= FLASH_BUDGET else f'OVER by {(flash - FLASH_BUDGET) / KIB:.1f} KiB'}")
    print(f"RAM:   {ram:>8} bytes ({ram / KIB:6.1f} KiB) = .data + .bss {ram - heap} + heap {heap} (stack not counted)")
    budget = RAM_BUDGET_BASE + linear
    used = static_ram + heap
    print(f"       budget 128 KiB + linear memory {linear // KIB} KiB = {budget // KIB} KiB: "
          f"{'OK' if used <= budget else f'OVER by {(used - budget) / KIB:.1f} KiB'}")
    bundle = os.environ.get("TERN_FW_BUNDLE", "../../../target/bundles/smoother.tern")
    if os.path.exists(bundle):
        print(f"flash includes the embedded bundle {bundle}: {os.path.getsize(bundle)} bytes "
              "(.rodata, counted as unattributed; in a flash slot once OTA lands)")
    print("flash by crate (symbol sizes; LTO inlining makes this indicative):")
    for crate, n in shares(elf, nm, text + rodata):
        print(f"  {crate:<38} {n:>8} bytes {n / KIB:6.1f} KiB {100 * n / max(1, text + rodata):5.1f} %")


if __name__ == "__main__":
    main()
