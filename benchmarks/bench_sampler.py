"""How much CPU the sampler itself costs, as a share of one core.

Runs the meters this machine offers (psutil, RAPL and NVML where present, the CPU estimate) for a
fixed window at each interval and reports the sampler thread's own CPU time (time.thread_time
inside the thread) and the whole process's CPU time over the window. Goal: < 1 % of one core at
100 ms. The main thread only sleeps, so the process figure is the sampler plus Python's overhead.

    PYTHONPATH=workflow/scripts .venv/bin/python benchmarks/bench_sampler.py --duration-s 10
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from serving_energy.meters import Sampler, build_meters


def process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_once(interval_s: float, duration_s: float, estimate: bool) -> dict[str, float]:
    meters = build_meters({"interval_s": interval_s, "cpu_estimate": {"enabled": estimate}})
    sampler = Sampler(meters, interval_s=interval_s)
    cpu0, wall0 = process_cpu_s(), time.monotonic()
    sampler.start()
    time.sleep(duration_s)
    timeline = sampler.stop()
    wall = time.monotonic() - wall0
    process = process_cpu_s() - cpu0
    thread = sampler.thread_cpu_s.get("sampler", float("nan"))
    active = [m.name for m in timeline.meters if m.available]
    return {
        "interval_s": interval_s,
        "wall_s": wall,
        "ticks": sampler.ticks,
        "expected_ticks": duration_s / interval_s,
        "samples": len(timeline.samples),
        "thread_cpu_s": thread,
        "thread_pct_core": 100.0 * thread / wall,
        "process_pct_core": 100.0 * process / wall,
        "meters": ",".join(active),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=10.0, help="window per interval")
    parser.add_argument(
        "--intervals", type=float, nargs="+", default=[0.1, 0.01], help="intervals in seconds"
    )
    parser.add_argument("--no-estimate", action="store_true", help="leave the CPU estimate out")
    args = parser.parse_args(argv)

    rows = [run_once(i, args.duration_s, not args.no_estimate) for i in args.intervals]
    print(f"sampler overhead over {args.duration_s:g} s windows; meters: {rows[0]['meters']}")
    print(
        f"{'interval':>9} {'ticks':>7} {'expected':>8} {'samples':>8} "
        f"{'thread CPU s':>12} {'thread % core':>13} {'process % core':>14}"
    )
    for r in rows:
        print(
            f"{r['interval_s'] * 1000:>7g}ms {r['ticks']:>7d} {r['expected_ticks']:>8.0f} "
            f"{r['samples']:>8d} {r['thread_cpu_s']:>12.3f} {r['thread_pct_core']:>12.2f}% "
            f"{r['process_pct_core']:>13.2f}%"
        )
    at_100ms = [r for r in rows if abs(r["interval_s"] - 0.1) < 1e-9]
    if at_100ms:
        ok = at_100ms[0]["thread_pct_core"] < 1.0
        print(f"goal < 1 % of one core at 100 ms: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
