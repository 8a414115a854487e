"""Time a model server's load with and without transformers' unused imports (scikit-learn, SciPy).

Each sample is a fresh interpreter that loads a tiny stand-in through ``load_engine``, as a model
server does, and generates one token; its wall time from start to the token is what a run waits
before its window. "lean" is the workflow's path (``core/lean_imports.py`` takes effect); "full"
imports transformers' generation code first, so scikit-learn and SciPy are imported as before.
The two alternate, so a busy moment hits both.

    .venv/bin/python benchmarks/bench_server_load.py                      # torch, 5 pairs
    .venv/bin/python benchmarks/bench_server_load.py --pairs 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
sys.path.insert(0, str(SCRIPTS))

from serving_energy.data.standins import build_standin  # noqa: E402 (after sys.path)

LOAD = """
import sys
sys.path.insert(0, {scripts!r})
if {full}:
    import transformers.generation.utils  # imports scikit-learn and SciPy, as transformers does
from serving_energy.engines import load_engine
engine = load_engine("torch", "cpu", {model!r}, None, 1)
engine.generate("def f(x):", 1)
print(sorted(m for m in ("sklearn", "scipy") if m in sys.modules))
"""


def one_load_s(model_dir: Path, full: bool) -> tuple[float, str]:
    code = LOAD.format(scripts=str(SCRIPTS), model=str(model_dir), full=full)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    elapsed_s = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return elapsed_s, result.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--architecture", default="llama")
    parser.add_argument("--json", type=Path, help="write the samples and medians here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / args.architecture
        build_standin(args.architecture, model_dir, n_layers=2, hidden_size=64, n_heads=4)
        one_load_s(model_dir, full=False)  # warm the file cache for both
        samples: dict[str, list[float]] = {"lean": [], "full": []}
        imported: dict[str, str] = {}
        for _ in range(args.pairs):
            for name in samples:
                elapsed_s, modules = one_load_s(model_dir, full=name == "full")
                samples[name].append(elapsed_s)
                imported[name] = modules
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, values in samples.items():
        print(
            f"{name:5s} median {medians[name]:.2f} s  (min {min(values):.2f}, max "
            f"{max(values):.2f}; imported {imported[name]})"
        )
    print(f"lean / full = {medians['lean'] / medians['full']:.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "architecture": args.architecture,
                    "pairs": args.pairs,
                    "samples_s": samples,
                    "median_s": medians,
                    "lean_over_full": medians["lean"] / medians["full"],
                    "imported": imported,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
