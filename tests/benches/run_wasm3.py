"""wasm3 (through pywasm3): run(iterations) of a module, best of a few calls.

Usage: python run_wasm3.py <module.wasm> <iterations> <repeat>. Prints one
`interp-row\t<engine>\t<ns per iteration>\t<checksum>` line, the format
`cargo xtask bench` reads from every runner. wasm3 has no fuel metering. The call
crosses from Python once per run, so Python adds nothing per iteration.
"""

import importlib.metadata
import sys
import time

import wasm3


def main() -> int:
    if len(sys.argv) != 4:
        print("usage: run_wasm3.py <module.wasm> <iterations> <repeat>", file=sys.stderr)
        return 2
    path, n, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(path, "rb") as f:
        wasm = f.read()
    env = wasm3.Environment()
    # 64 KiB of wasm3 stack: run() needs a handful of slots.
    runtime = env.new_runtime(64 * 1024)
    runtime.load(env.parse_module(wasm))
    run = runtime.find_function("run")
    best = None
    checksum = None
    for _ in range(repeat):
        start = time.perf_counter_ns()
        result = run(n) & 0xFFFF_FFFF_FFFF_FFFF
        elapsed = time.perf_counter_ns() - start
        best = elapsed if best is None else min(best, elapsed)
        if checksum is not None and checksum != result:
            print(f"run_wasm3.py: run({n}) returned two different checksums", file=sys.stderr)
            return 1
        checksum = result
    label = f"wasm3 {wasm3.M3_VERSION} (pywasm3 {importlib.metadata.version('pywasm3')}), no fuel"
    print(f"interp-row\t{label}\t{best / n:.3f}\t0x{checksum:016x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
