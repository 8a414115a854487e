"""The host calibration's time and bandwidths at two CPU buffer sizes, side by side.

Every calibration kernel (``roofline.available_cpu_kernels``) at every thread count the
calibration uses, once per buffer size per round, the sizes alternating so a busy moment hits
both. Reports per size the calibration's wall time and each kernel's median bandwidth, and their
ratios: the default buffer (``cpu_buffer_bytes`` of this CPU's last-level cache) should read as
fast as the large one, or the calibration's bound depends on the buffer.

    .venv/bin/python benchmarks/bench_calibration.py                       # default vs 1 GiB
    .venv/bin/python benchmarks/bench_calibration.py --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from serving_energy.meters import roofline  # noqa: E402 (after sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="write the samples and summaries here")
    args = parser.parse_args()
    llc = roofline.cpu_last_level_cache_bytes()
    sizes = {"default": roofline.cpu_buffer_bytes(llc), "large": args.large_mib * 2**20}
    kernels = roofline.available_cpu_kernels()
    counts = roofline.thread_counts(args.threads)
    wall_s: dict[str, list[float]] = {name: [] for name in sizes}
    gb_s: dict[str, dict[str, list[float]]] = {name: {} for name in sizes}
    for _ in range(args.rounds):
        for name, size in sizes.items():
            started = time.perf_counter()
            for kernel in kernels:
                for count in counts:
                    measured = roofline.measure_cpu_read_bandwidth(
                        count, kernel=kernel, buffer_bytes=size
                    )
                    gb_s[name].setdefault(f"{kernel}@{count}", []).append(
                        measured.read_bandwidth_gb_s
                    )
            wall_s[name].append(time.perf_counter() - started)
    print(f"last-level cache {llc} bytes; buffers {sizes}; {args.rounds} rounds")
    summary = {}
    for name in sizes:
        summary[name] = {
            "buffer_bytes": sizes[name],
            "wall_s": statistics.median(wall_s[name]),
            "median_gb_s": {k: statistics.median(v) for k, v in gb_s[name].items()},
        }
        print(f"{name:8s} {sizes[name] >> 20:5d} MiB  calibration {summary[name]['wall_s']:.1f} s")
    for key in summary["default"]["median_gb_s"]:
        small, large = (summary[name]["median_gb_s"][key] for name in ("default", "large"))
        print(f"  {key:12s} {small:6.1f} GB/s vs {large:6.1f} GB/s  ratio {small / large:.2f}")
    ratio = summary["default"]["wall_s"] / summary["large"]["wall_s"]
    print(f"calibration time default / large = {ratio:.2f}")
    if args.json:
        record = {"last_level_cache_bytes": llc, "rounds": args.rounds, "summary": summary}
        record["samples"] = {"wall_s": wall_s, "gb_s": gb_s}
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
