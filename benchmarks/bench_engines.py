"""Decode speed of the study's engines (every plug-in) on the CPU, side by side, for a
codeparrot-small-sized stand-in (or, with --geometry, a paper model's).

A random-weight GPT-2 stand-in at codeparrot-small's geometry (12 layers, 768 hidden, 12 heads,
with GPT-2's vocabulary of 50 257, ~124 M parameters) is built and exported once into --work-dir (reused on later
runs). Every engine is loaded once, each in its own worker process as in the study (one engine
per server process): engines loaded side by side in one process disturb each other -- with ONNX
Runtime and two OpenVINO models loaded beside it, torch's eager loop fell from ~40 to 24 tokens/s
here. TorchScript warms its traced prefill and decode step up while loading; torch.compile
compiles its decode step while loading. Prompts are then
served round-robin across the engines (engine order rotates per prompt; idle workers sleep on a
pipe) so drift in machine load hits all engines alike. Greedy, batch 1, exactly --max-new-tokens
new tokens per prompt, every prompt for every engine.

Reports per engine: tokens/s and mean latency and their ratios to torch; the fraction of the
machine's memory-bandwidth bound (``serving_energy.meters.roofline``: read bandwidth measured here with
the same threads, weight bytes per token at the engine's compute precision); and whether its ids
equal torch's -- where not, the first divergence with torch's top-1/top-2 margin there, the
engine's largest logit difference on that prompt and torch's own decode noise (its decode steps'
logits against its full pass); a margin below either is a near-tie flipped by rounding, not a
broken engine.

    .venv/bin/python benchmarks/bench_engines.py                      # 164 prompts x 116 tokens
    .venv/bin/python benchmarks/bench_engines.py --n-prompts 8        # a reduced run
    .venv/bin/python benchmarks/bench_engines.py --openvino-precisions f32 default
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

from serving_energy.study.vocabulary import ENGINES  # noqa: E402 (after sys.path)

# codeparrot-small: GPT-2 architecture, 12 x 768, 12 heads. Its vocabulary is 32 768; the stand-in
# takes GPT-2's tokenizer and vocabulary (50 257: 124 M parameters, not 111 M) because llama.cpp's
# converter knows that tokenizer and not the offline trained one.
MODEL_NAME = "gpt2-12x768-v50257"
GEOMETRY = {
    "n_layers": 12,
    "hidden_size": 768,
    "n_heads": 12,
    "tokenizer": "gpt2",
    "seed": 0,
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "serving-energy-bench"
    )
    parser.add_argument("--prompts", type=Path, help="prompts.jsonl (field 'prompt')")
    parser.add_argument("--n-prompts", type=int, default=164)
    parser.add_argument("--max-new-tokens", type=int, default=116, help="128 total - ~12 prompt")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument(
        "--openvino-precisions",
        nargs="+",
        default=["f32"],
        choices=["f32", "bf16", "default"],
        help="one OpenVINO row per inference precision ('default': OpenVINO's own choice)",
    )
    parser.add_argument(
        "--geometry",
        help="a paper model's geometry (study/geometries.py, e.g. pythia-1.4b) with GPT-2's "
        "tokenizer, instead of the codeparrot-small-sized GPT-2",
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed generations per engine")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def humaneval_first_lines() -> list[str]:
    """Each HumanEval problem's first line of code that is not an import (164 prompts)."""
    from serving_energy.data.dataset import (
        first_code_line,
        packaged_humaneval_path,
        read_problems,
    )

    return [first_code_line(p.prompt) for p in read_problems(packaged_humaneval_path())]


def load_prompts(path: Path | None, n_prompts: int) -> list[str]:
    if path is None:
        prompts = humaneval_first_lines()
    else:
        with open(path, encoding="utf-8") as handle:
            prompts = [json.loads(line)["prompt"] for line in handle if line.strip()]
    return prompts[:n_prompts]


def model_name(geometry: str | None) -> str:
    return MODEL_NAME if geometry is None else f"{geometry}-standin"


def prepare(
    work_dir: Path, engines: list[str], geometry: str | None = None
) -> tuple[Path, dict[str, Path | None]]:
    """Build the stand-in and export it once; later runs reuse complete, current artefacts."""
    from serving_energy.data.model_sources import build_standin_model
    from serving_energy.data.standins import STANDIN_FILE, build_standin
    from serving_energy.engines.export import EXPORT_FILE, export_model, read_export_info
    from serving_energy.engines.torchscript_engine.engine import TORCHSCRIPT_FORMAT
    from serving_energy.study.vocabulary import ENGINE_SPECS

    name = model_name(geometry)
    model_dir = work_dir / name / "model"
    if not (model_dir / STANDIN_FILE).is_file():
        started = time.perf_counter()
        if geometry is None:
            info = build_standin("gpt2", model_dir, **GEOMETRY)
        else:
            standin = {"geometry": geometry, "tokenizer": "gpt2"}
            info = build_standin_model(standin, model_dir)
        print(
            f"built stand-in: {info.n_parameters / 1e6:.1f} M parameters "
            f"({time.perf_counter() - started:.1f} s)"
        )
    artefacts: dict[str, Path | None] = {}
    for engine in engines:
        if not ENGINE_SPECS[engine].exported:
            artefacts[engine] = None  # the model folder itself (torch, torch.compile)
            continue
        out_dir = work_dir / name / ("torchscript-cpu" if engine == "torchscript" else engine)
        current = (out_dir / EXPORT_FILE).is_file() and (
            engine != "torchscript"
            or read_export_info(out_dir)["details"].get("format") == TORCHSCRIPT_FORMAT
        )
        if not current:
            provider = "cpu" if ENGINE_SPECS[engine].export_per_provider else None
            info = export_model(engine, model_dir, out_dir, provider)
            print(f"exported {engine}: {info.duration_s:.1f} s, {info.size_bytes / 1e6:.0f} MB")
        artefacts[engine] = out_dir
    return model_dir, artefacts


class EngineWorker:
    """One engine loaded in its own process; requests go over a pipe, one at a time."""

    def __init__(self, name, engine, model_dir, artefact, threads, options):
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # a fresh interpreter, nothing inherited
        self.name = name
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=serve_engine,
            args=(child, engine, str(model_dir), artefact and str(artefact), threads, options),
            daemon=True,
        )
        self.process.start()
        status, payload = self.conn.recv()
        if status != "ready":
            raise RuntimeError(f"{name} failed to load: {payload}")
        self.info, self.load_s = payload

    def call(self, *request):
        self.conn.send(request)
        status, payload = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"{self.name}: {payload}")
        return payload

    def generate(self, prompt: str, max_new_tokens: int) -> tuple[tuple[int, ...], float]:
        return self.call("generate", prompt, max_new_tokens)

    def close(self) -> None:
        self.conn.send(("stop",))
        self.process.join(timeout=30)


def serve_engine(conn, engine, model_dir, artefact, threads, options) -> None:
    """Worker process: load once, then answer generate / encode / logits until told to stop."""
    import dataclasses
    import traceback
    import warnings

    warnings.filterwarnings("ignore")
    from transformers.utils import logging

    logging.set_verbosity_error()
    from serving_energy.engines import load_engine

    try:
        started = time.perf_counter()
        loaded = load_engine(
            engine, "cpu", Path(model_dir), artefact and Path(artefact), threads,
            options,
        )  # fmt: skip
        load_s = time.perf_counter() - started
        conn.send(("ready", (dataclasses.asdict(loaded.info()), load_s)))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        request = conn.recv()
        try:
            if request[0] == "stop":
                return
            if request[0] == "generate":
                generation = loaded.generate(request[1], request[2])
                conn.send(("ok", (generation.new_token_ids, generation.duration_s)))
            elif request[0] == "encode":
                conn.send(("ok", loaded.encode(request[1])))
            elif request[0] == "logits":
                conn.send(("ok", loaded.sequence_logits(request[1])))
            elif request[0] == "step_logits":
                _, steps = loaded.generate_with_step_logits(request[1], request[2])
                conn.send(("ok", steps))
        except Exception:  # noqa: BLE001
            conn.send(("error", traceback.format_exc()))


def first_divergence(candidate, reference, prompt: str, got, want) -> dict | None:
    """Where ``got`` first leaves torch's ids, torch's top-1 minus top-2 logit there, the
    candidate's largest logit difference over the prompt's generated positions (both measured
    on torch's own sequence, so the inputs are identical), and torch's own fp32 noise there: its
    decode steps' logits against its full pass over the same ids, as the equivalence check
    (engines/equivalence.py) measures it. An engine whose full pass is torch's to the bit
    (TorchScript traces torch's ops) shows a logit difference of 0 while its decode path, like
    torch's own, differs from that pass; the margin is a near tie if it is within either."""
    import numpy as np

    index = next((i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b), None)
    if index is None:
        return None
    prompt_ids = reference.call("encode", prompt)
    sequence = prompt_ids + list(want)
    ref_logits = reference.call("logits", sequence)
    cand_logits = candidate.call("logits", sequence)
    ref_steps = reference.call("step_logits", prompt, len(want))
    predicting = slice(len(prompt_ids) - 1, len(sequence) - 1)
    top_two = np.sort(ref_logits[len(prompt_ids) - 1 + index])[-2:]
    margin = float(top_two[1] - top_two[0])
    max_diff = float(np.max(np.abs(ref_logits[predicting] - cand_logits[predicting])))
    decode_noise = float(np.max(np.abs(ref_logits[predicting] - ref_steps)))
    return {
        "new_token_index": index,
        "torch_top2_margin": margin,
        "max_abs_logit_diff": max_diff,
        "torch_decode_noise_logit_diff": decode_noise,
        "near_tie": margin <= max(max_diff, decode_noise),
    }


def measure_bandwidth(threads: int) -> dict[str, float]:
    """The workflow's host calibration: the bound (best kernel and thread count) and torch's GEMV."""
    from serving_energy.meters.roofline import calibrate_host

    calibration = calibrate_host(threads, cuda=False)
    return {
        "bound": calibration.cpu_read_bandwidth_gb_s,
        "gemv": calibration.cpu_gemv_bandwidth_gb_s,
    }


def main(argv=None) -> int:
    import warnings

    warnings.filterwarnings("ignore")
    from transformers.utils import logging

    logging.set_verbosity_error()
    from serving_energy.serving.server_process import thread_environment

    args = parse_args(argv)
    engines = ["torch", *[e for e in args.engines if e != "torch"]]
    prompts = load_prompts(args.prompts, args.n_prompts)
    model_dir, artefacts = prepare(args.work_dir, engines, args.geometry)
    rows = []  # (row name, engine, options)
    for engine in engines:
        if engine != "openvino":
            rows.append((engine, engine, {}))
            continue
        for precision in args.openvino_precisions:
            name = "openvino" if precision == "f32" else f"openvino[{precision}]"
            rows.append((name, engine, {"inference_precision": precision}))
    names = [name for name, _, _ in rows]

    bandwidth_before = measure_bandwidth(args.threads)
    # As the server process gets them (serving_energy.serving.server_process): set, never inherited.
    os.environ.update(thread_environment(args.threads))
    loaded = {}
    try:
        for name, engine, options in rows:
            loaded[name] = EngineWorker(
                name, engine, model_dir, artefacts[engine], args.threads, options
            )
            for _ in range(args.warmup):
                # Short: warms kernels and allocators without paying for a full generation.
                loaded[name].generate(prompts[0], min(8, args.max_new_tokens))
            print(
                f"loaded {name} in {loaded[name].load_s:.1f} s "
                f"({loaded[name].info['compute_precision']})"
            )
        return run(args, prompts, model_dir, names, loaded, bandwidth_before)
    finally:
        for worker in loaded.values():
            worker.close()


def run(args, prompts, model_dir, names, loaded, bandwidth_before) -> int:
    from serving_energy.core.progress import Counter
    from serving_energy.meters.roofline import roofline_point, weight_bytes_per_token

    durations = {name: [] for name in names}
    ids = {name: [] for name in names}
    # The full run takes about half an hour: say how far it is (stderr, so the report stays clean).
    progress = Counter(f"prompts, each through {len(names)} engines", len(prompts))
    started = time.perf_counter()
    for index, prompt in enumerate(prompts):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            new_ids, duration_s = loaded[name].generate(prompt, args.max_new_tokens)
            durations[name].append(duration_s)
            ids[name].append(new_ids)
        progress.update(ok=True)
    progress.close()
    wall_s = time.perf_counter() - started
    bandwidth_after = measure_bandwidth(args.threads)
    # A bound must bound: the higher of the two calibrations (an engine could reach either).
    read_gb_s = max(bandwidth_before["bound"], bandwidth_after["bound"])
    gemv_gb_s = min(bandwidth_before["gemv"], bandwidth_after["gemv"])

    results = []
    for name in names:
        info = loaded[name].info
        tokens_per_s = len(prompts) * args.max_new_tokens / sum(durations[name])
        weights = weight_bytes_per_token(model_dir, info["compute_precision"])
        point = roofline_point(tokens_per_s, read_gb_s, weights.bytes_per_token)
        divergences = []
        for index, (got, want) in enumerate(zip(ids[name], ids["torch"], strict=True)):
            if got != want:
                found = first_divergence(loaded[name], loaded["torch"], prompts[index], got, want)
                divergences.append({"prompt_index": index, **found})
        results.append(
            {
                "engine": name,
                "compute_precision": info["compute_precision"],
                "load_s": loaded[name].load_s,
                "n_prompts": len(durations[name]),
                "tokens_per_s": tokens_per_s,
                "mean_latency_s": statistics.fmean(durations[name]),
                "bytes_per_token": weights.bytes_per_token,
                "bound_tokens_per_s": point.bound_tokens_per_s,
                "fraction_of_bound": point.fraction_of_bound,
                "fraction_of_gemv_bandwidth": tokens_per_s
                * weights.bytes_per_token
                / gemv_gb_s
                / 1e9,
                "ids_equal_torch": not divergences,
                "divergences": divergences,
            }
        )
    torch_row = results[0]
    for row in results:
        row["tokens_per_s_ratio_to_torch"] = row["tokens_per_s"] / torch_row["tokens_per_s"]
        row["latency_ratio_to_torch"] = row["mean_latency_s"] / torch_row["mean_latency_s"]
    print_report(results, args, len(prompts), wall_s, read_gb_s, gemv_gb_s)
    if args.json:
        record = {
            "n_prompts": len(prompts),
            "max_new_tokens": args.max_new_tokens,
            "threads": args.threads,
            "model": model_name(args.geometry),
            "geometry": GEOMETRY if args.geometry is None else args.geometry,
            "wall_s": wall_s,
            "read_bandwidth_gb_s": {"before": bandwidth_before, "after": bandwidth_after},
            "engines": {n: loaded[n].info for n in names},
            "results": results,
        }
        args.json.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return 0


def print_report(results, args, n_prompts, wall_s, read_gb_s, gemv_gb_s) -> None:
    print(
        f"\n{n_prompts} prompts x {args.max_new_tokens} new tokens, greedy, batch 1, "
        f"{args.threads} threads, CPU; {wall_s:.0f} s in all; read bandwidth {read_gb_s:.1f} GB/s "
        f"(sum), {gemv_gb_s:.1f} GB/s (torch fp32 GEMV)"
    )
    print(
        f"{'engine':<18} {'prec':>5} {'prompts':>7} {'tokens/s':>9} {'x torch':>8} "
        f"{'latency s':>10} {'bound t/s':>10} {'of bound':>9} {'of GEMV':>8}  ids = torch"
    )
    reference_precision = results[0]["compute_precision"]
    for row in results:
        ids_text = ids_summary(row, n_prompts, reference_precision)
        print(
            f"{row['engine']:<18} {row['compute_precision']:>5} {row['n_prompts']:>7} "
            f"{row['tokens_per_s']:>9.1f} {row['tokens_per_s_ratio_to_torch']:>8.2f} "
            f"{row['mean_latency_s']:>10.3f} {row['bound_tokens_per_s']:>10.1f} "
            f"{row['fraction_of_bound']:>9.2f} {row['fraction_of_gemv_bandwidth']:>8.2f}  {ids_text}"
        )


def ids_summary(row: dict, n_prompts: int, reference_precision: str) -> str:
    """One line on how an engine's greedy ids compare with torch's, over every prompt."""
    divergences = row["divergences"]
    if not divergences:
        return "yes"
    margin = max(d["torch_top2_margin"] for d in divergences)
    logit_diff = max(d["max_abs_logit_diff"] for d in divergences)
    counted = f"no: {len(divergences)} of {n_prompts} prompts"
    if row["compute_precision"] != reference_precision:
        # Not a near-tie question: the engine computes something else, by request.
        first_tokens = sorted({d["new_token_index"] for d in divergences})[:3]
        return (
            f"{counted}; {row['compute_precision']} is another computation than torch's "
            f"{reference_precision} (first divergences at new token {first_tokens}, "
            f"logit differences up to {logit_diff:.2g})"
        )
    noise = max(d["torch_decode_noise_logit_diff"] for d in divergences)
    not_ties = [d for d in divergences if not d["near_tie"]]
    if not not_ties:
        return (
            f"{counted}, each first divergence a near-tie (torch top-2 margin there at most "
            f"{margin:.2g}; the engine's logit differences on those prompts up to {logit_diff:.2g}, "
            f"torch's own decode noise up to {noise:.2g})"
        )
    first = not_ties[0]
    return (
        f"{counted}, {len(not_ties)} NOT a near-tie: first prompt {first['prompt_index']} "
        f"token {first['new_token_index']}, torch margin {first['torch_top2_margin']:.2g} "
        f"above the engine's logit difference {first['max_abs_logit_diff']:.2g} and torch's "
        f"own decode noise {first['torch_decode_noise_logit_diff']:.2g}"
    )


if __name__ == "__main__":
    sys.exit(main())
