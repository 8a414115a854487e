"""Decode speed of the four engines on the CPU, side by side, for a codeparrot-small-sized stand-in.

A random-weight GPT-2 stand-in at codeparrot-small's geometry (12 layers, 768 hidden, 12 heads,
GPT-2's 50 257-token vocabulary, ~124 M parameters) is built and exported once into --work-dir
(reused on later runs). Every engine is loaded once; prompts are then served round-robin across the
engines (engine order rotates per prompt) so drift in machine load hits all engines alike. Greedy,
batch 1, exactly --max-new-tokens new tokens per prompt. Prints tokens/s and mean latency per engine
and their ratios to torch, and whether every engine's ids equal torch's.

    .venv/bin/python benchmarks/bench_engines.py                       # 164 prompts x 116 tokens
    .venv/bin/python benchmarks/bench_engines.py --n-prompts 8         # a reduced run
    .venv/bin/python benchmarks/bench_engines.py --prompts results/prompts/prompts.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

ENGINES = ("torch", "onnx", "openvino", "torchscript")
GEOMETRY = {"n_layers": 12, "hidden_size": 768, "n_heads": 12, "tokenizer": "gpt2", "seed": 0}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "serving-energy-bench"
    )
    parser.add_argument("--prompts", type=Path, help="prompts.jsonl (field 'prompt')")
    parser.add_argument("--n-prompts", type=int, default=164)
    parser.add_argument("--max-new-tokens", type=int, default=116, help="128 total - ~12 prompt")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--warmup", type=int, default=2, help="untimed generations per engine")
    parser.add_argument(
        "--torchscript-prompts",
        type=int,
        help="serve only the first N prompts with torchscript: without a KV cache it re-runs the "
        "whole sequence every step (about 0.5 tokens/s at this size on 2 busy cores)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def humaneval_first_lines() -> list[str]:
    """Each HumanEval problem's first line of code that is not an import (164 prompts)."""
    from serving_energy.tokenizers_offline import default_humaneval_path, read_humaneval_prompts

    prompts = []
    for text in read_humaneval_prompts(default_humaneval_path()):
        lines = [line for line in text.splitlines() if line.strip()]
        code = [line for line in lines if not line.startswith(("import ", "from "))]
        prompts.append((code or lines)[0])
    return prompts


def load_prompts(path: Path | None, n_prompts: int) -> list[str]:
    if path is None:
        prompts = humaneval_first_lines()
    else:
        with open(path, encoding="utf-8") as handle:
            prompts = [json.loads(line)["prompt"] for line in handle if line.strip()]
    return prompts[:n_prompts]


def prepare(work_dir: Path, engines: list[str]) -> tuple[Path, dict[str, Path | None]]:
    """Build the stand-in and export it once; later runs reuse complete artefacts."""
    from serving_energy.export import EXPORT_FILE, export_onnx, export_openvino, export_torchscript
    from serving_energy.standins import STANDIN_FILE, build_standin

    model_dir = work_dir / "codeparrot-small-standin"
    if not (model_dir / STANDIN_FILE).is_file():
        started = time.perf_counter()
        info = build_standin("gpt2", model_dir, **GEOMETRY)
        print(
            f"built stand-in: {info.n_parameters / 1e6:.1f} M parameters "
            f"({time.perf_counter() - started:.1f} s)"
        )
    exporters = {
        "onnx": export_onnx,
        "openvino": export_openvino,
        "torchscript": lambda m, o: export_torchscript(m, o, "cpu"),
    }
    artefacts: dict[str, Path | None] = {"torch": None}
    for engine in engines:
        if engine == "torch":
            continue
        out_dir = work_dir / ("torchscript-cpu" if engine == "torchscript" else engine)
        if not (out_dir / EXPORT_FILE).is_file():
            info = exporters[engine](model_dir, out_dir)
            print(f"exported {engine}: {info.duration_s:.1f} s, {info.size_bytes / 1e6:.0f} MB")
        artefacts[engine] = out_dir
    return model_dir, artefacts


def main(argv=None) -> int:
    import warnings

    warnings.filterwarnings("ignore")
    from transformers.utils import logging

    logging.set_verbosity_error()
    from serving_energy.engines import load_engine

    args = parse_args(argv)
    engines = ["torch", *[e for e in args.engines if e != "torch"]]
    prompts = load_prompts(args.prompts, args.n_prompts)
    model_dir, artefacts = prepare(args.work_dir, engines)
    loaded = {}
    for engine in engines:
        started = time.perf_counter()
        loaded[engine] = load_engine(engine, "cpu", model_dir, artefacts[engine], args.threads)
        load_s = time.perf_counter() - started
        for _ in range(args.warmup):
            # Short: warms kernels, allocators and TorchScript's profiling executor (which
            # optimises after its first calls) without paying for a full generation.
            loaded[engine].generate(prompts[0], min(8, args.max_new_tokens))
        print(f"loaded {engine} in {load_s:.1f} s")

    durations = {engine: [] for engine in engines}
    ids = {engine: [] for engine in engines}
    started = time.perf_counter()
    for index, prompt in enumerate(prompts):
        order = engines[index % len(engines) :] + engines[: index % len(engines)]
        for engine in order:
            if engine == "torchscript" and index >= (args.torchscript_prompts or len(prompts)):
                continue
            generation = loaded[engine].generate(prompt, args.max_new_tokens)
            durations[engine].append(generation.duration_s)
            ids[engine].append(generation.new_token_ids)
    wall_s = time.perf_counter() - started

    rows = []
    for engine in engines:
        served = len(durations[engine])
        rows.append(
            {
                "engine": engine,
                "n_prompts": served,
                "tokens_per_s": served * args.max_new_tokens / sum(durations[engine]),
                "mean_latency_s": statistics.fmean(durations[engine]),
                "ids_equal_torch": ids[engine] == ids["torch"][:served],
            }
        )
    torch_row = rows[0]
    print(
        f"\n{len(prompts)} prompts x {args.max_new_tokens} new tokens, greedy, batch 1, "
        f"{args.threads} threads, CPU; {wall_s:.0f} s in all"
    )
    print(
        f"{'engine':<12} {'prompts':>7} {'tokens/s':>9} {'x torch':>8} "
        f"{'latency s':>10} {'x torch':>8}  ids=torch"
    )
    for row in rows:
        row["tokens_per_s_ratio_to_torch"] = row["tokens_per_s"] / torch_row["tokens_per_s"]
        row["latency_ratio_to_torch"] = row["mean_latency_s"] / torch_row["mean_latency_s"]
        print(
            f"{row['engine']:<12} {row['n_prompts']:>7} {row['tokens_per_s']:>9.1f} "
            f"{row['tokens_per_s_ratio_to_torch']:>8.2f} {row['mean_latency_s']:>10.3f} "
            f"{row['latency_ratio_to_torch']:>8.2f}  {row['ids_equal_torch']}"
        )
    if args.json:
        record = {
            "n_prompts": len(prompts),
            "max_new_tokens": args.max_new_tokens,
            "threads": args.threads,
            "geometry": GEOMETRY,
            "wall_s": wall_s,
            "engines": {e: loaded[e].info().__dict__ for e in engines},
            "results": rows,
        }
        args.json.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
