"""What serving over HTTP costs: served latency ÷ the same engine called in-process, per engine.

On a stand-in at codeparrot-small geometry (GPT-2 architecture, 12 layers, 768 hidden, 12 heads,
the real GPT-2 vocabulary of 50257 tokens) and the study's prompts (HumanEval, one 10-15 token
prompt per problem by the paper's method, or a prompts.jsonl given with --prompts-file), for each
engine:

* served:     a real server process (ServerProcess: uvicorn, loopback HTTP) answers every prompt;
              the latency is the client's (send_prompts), HTTP and JSON included;
* in-process: load_engine(...) in this process, then engine.generate(prompt, n) for every prompt;
              the latency is the wall time of that call.

Both do the same greedy work: exactly --new-tokens new tokens per prompt, the same threads. The two
modes never run at the same time: the server is stopped (and waited for) before the in-process
engine is loaded, and the in-process engine is released before the next server starts. They
alternate in ABBA order over --rounds rounds (served first in even rounds, in-process first in odd
ones), each after --warmup untimed requests, so drift of the machine (heat, other load) falls on
both modes alike. Goal: served ÷ in-process ≤ 1.02. Outputs of both modes are compared (greedy, same
engine: they must be equal).

Run it on an otherwise idle machine; the numbers mean nothing on a shared CPU. Stand-in and exports
are cached in --cache-dir (build/ is ignored by git). The full benchmark:

    PYTHONPATH=workflow/scripts .venv/bin/python benchmarks/bench_serving.py

and a quick check that it works (seconds to minutes; numbers meaningless):

    PYTHONPATH=workflow/scripts .venv/bin/python benchmarks/bench_serving.py \\
        --prompts 3 --new-tokens 4 --engines torch --rounds 1 --warmup 1
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from serving_energy.study.vocabulary import ENGINES  # noqa: E402 (after sys.path)

GOAL = 1.02


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--prompts-file", type=Path, help="a prompts.jsonl (task_id, prompt, n_tokens)"
    )
    parser.add_argument(
        "--prompts", type=int, default=164, help="use the first N prompts (default 164)"
    )
    parser.add_argument("--new-tokens", type=int, default=32, help="exact new tokens per prompt")
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma-separated, of " + ",".join(ENGINES)
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="engine threads (default: all cores)"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating rounds per engine (ABBA)"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed requests before each timed pass"
    )
    parser.add_argument("--cache-dir", type=Path, default=REPO / "build" / "bench_serving")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden-size", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--seed", type=int, default=2024, help="prompt sampling seed")
    parser.add_argument("--start-timeout-s", type=float, default=600.0)
    parser.add_argument("--request-timeout-s", type=float, default=600.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(args.engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engines {unknown}; expected some of {ENGINES}")
    if min(args.prompts, args.new_tokens, args.threads, args.rounds) < 1 or args.warmup < 0:
        parser.error("--prompts, --new-tokens, --threads and --rounds must be >= 1, --warmup >= 0")
    return args


def log(message: str) -> None:
    print(f"[bench_serving {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def standin(args) -> Path:
    """The codeparrot-small-sized stand-in, built once into the cache."""
    from serving_energy.data.standins import STANDIN_FILE, build_standin

    model_dir = args.cache_dir / f"gpt2-l{args.layers}-h{args.hidden_size}-a{args.heads}"
    if not (model_dir / STANDIN_FILE).is_file():
        log(f"building the stand-in in {model_dir}")
        build_standin(
            "gpt2", model_dir, n_layers=args.layers, hidden_size=args.hidden_size,
            n_heads=args.heads, tokenizer="gpt2", seed=0,
        )  # fmt: skip
    return model_dir


def artefact(engine: str, model_dir: Path) -> Path | None:
    """Each exported engine's artefact, exported once into the cache (export is atomic)."""
    from serving_energy.engines.export import EXPORT_FILE, export_model
    from serving_energy.study.vocabulary import ENGINE_SPECS

    if not ENGINE_SPECS[engine].exported:
        return None  # the model folder itself (torch, torch.compile)
    out_dir = model_dir.parent / f"{model_dir.name}-{engine}"
    if not (out_dir / EXPORT_FILE).is_file():
        log(f"exporting {engine} to {out_dir}")
        provider = "cpu" if ENGINE_SPECS[engine].export_per_provider else None
        export_model(engine, model_dir, out_dir, provider)
    return out_dir


def load_prompts(args, model_dir: Path):
    from serving_energy.data.dataset import (
        PromptSampling,
        humaneval_from_package,
        maybe_gunzip,
        parse_problems,
        read_prompts,
        sample_prompts,
    )

    if args.prompts_file:
        prompts = read_prompts(args.prompts_file)
    else:  # the paper's method on the 164 HumanEval problems, with the stand-in's tokenizer
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        problems = parse_problems(maybe_gunzip(humaneval_from_package()).decode().splitlines())
        prompts = sample_prompts(
            problems,
            lambda text: tokenizer(text, add_special_tokens=True)["input_ids"],
            lambda ids: tokenizer.decode(
                ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
            ),
            PromptSampling(args.seed, 10, 15),
        )
    return prompts[: args.prompts]


def served_pass(engine: str, model_dir: Path, artefact_dir, prompts, args) -> dict:
    """One server process: start, warm up, time every prompt over HTTP, stop (and wait for it)."""
    from serving_energy.serving.client import send_prompts
    from serving_energy.serving.server_process import ServerProcess, ServerSpec

    spec = ServerSpec(
        model_name="bench-standin", model_dir=model_dir, artefact_dir=artefact_dir, engine=engine,
        provider="cpu", threads=args.threads, max_length=4096, max_new_tokens=args.new_tokens,
    )  # fmt: skip
    log_path = args.cache_dir / "logs" / f"{engine}.server.log"
    with ServerProcess(spec, log_path) as server:
        server.start(args.start_timeout_s)
        timeout = args.request_timeout_s
        if args.warmup:
            warm = [prompts[i % len(prompts)] for i in range(args.warmup)]
            send_prompts(server.base_url, warm, timeout_s=timeout, progress=False)
        records = send_prompts(server.base_url, prompts, timeout_s=timeout, progress=False)
        server.check_alive()
    failed = [r for r in records if not r.ok]
    if failed:
        raise SystemExit(
            f"{engine}: {len(failed)} served requests failed; first: {failed[0].error}"
        )
    return {
        "latency_s": [r.latency_s for r in records],
        "server_latency_s": [r.server_latency_s for r in records],
        "outputs": [r.output for r in records],
    }


def in_process_pass(engine: str, model_dir: Path, artefact_dir, prompts, args) -> dict:
    """The same engine in this process: load, warm up, time every generate() call, release."""
    from serving_energy.engines import load_engine

    loaded = load_engine(engine, "cpu", model_dir, artefact_dir, args.threads)
    try:
        for i in range(args.warmup):
            loaded.generate(prompts[i % len(prompts)].prompt, args.new_tokens)
        latencies, outputs = [], []
        for prompt in prompts:
            started = time.perf_counter()
            generation = loaded.generate(prompt.prompt, args.new_tokens)
            latencies.append(time.perf_counter() - started)
            outputs.append(generation.text)
    finally:
        del loaded
        gc.collect()
    return {"latency_s": latencies, "outputs": outputs}


def bench_engine(engine: str, model_dir: Path, prompts, args) -> dict:
    artefact_dir = artefact(engine, model_dir)
    served: list[dict] = []
    local: list[dict] = []
    for round_ in range(args.rounds):
        order = ("served", "in-process") if round_ % 2 == 0 else ("in-process", "served")
        for mode in order:  # strictly one after the other: never both at once
            log(f"{engine}: round {round_ + 1}/{args.rounds}, {mode}")
            if mode == "served":
                served.append(served_pass(engine, model_dir, artefact_dir, prompts, args))
            else:
                local.append(in_process_pass(engine, model_dir, artefact_dir, prompts, args))
    served_mean = statistics.fmean(x for p in served for x in p["latency_s"])
    local_mean = statistics.fmean(x for p in local for x in p["latency_s"])
    server_side = statistics.fmean(x for p in served for x in p["server_latency_s"])
    per_round = [
        statistics.fmean(s["latency_s"]) / statistics.fmean(p["latency_s"])
        for s, p in zip(served, local, strict=True)
    ]
    mismatches = sum(
        a != b
        for s in served
        for p in local
        for a, b in zip(s["outputs"], p["outputs"], strict=True)
    )
    return {
        "engine": engine,
        "in_process_mean_s": local_mean,
        "served_mean_s": served_mean,
        "server_side_mean_s": server_side,
        "ratio": served_mean / local_mean,
        "ratio_per_round": per_round,
        "http_overhead_ms": (served_mean - server_side) * 1000,
        "output_mismatches": mismatches,
        "n_prompts": len(prompts),
        "rounds": args.rounds,
    }


def print_table(results: list[dict], args) -> None:
    print(
        f"\nserved over HTTP ÷ in-process, {results[0]['n_prompts'] if results else 0} prompts, "
        f"{args.new_tokens} new tokens, {args.threads} threads, {args.rounds} round(s), stand-in "
        f"gpt2 {args.layers}x{args.hidden_size}/{args.heads} (vocab 50257)"
    )
    header = (
        f"{'engine':<12} {'in-process s':>12} {'served s':>10} {'server-side s':>13} "
        f"{'HTTP ms':>8} {'ratio':>7} {'rounds':>15} {'goal':>5} {'outputs':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        rounds = "/".join(f"{x:.3f}" for x in r["ratio_per_round"])
        outputs = "equal" if r["output_mismatches"] == 0 else f"{r['output_mismatches']} diff"
        print(
            f"{r['engine']:<12} {r['in_process_mean_s']:>12.4f} {r['served_mean_s']:>10.4f} "
            f"{r['server_side_mean_s']:>13.4f} {r['http_overhead_ms']:>8.2f} {r['ratio']:>7.3f} "
            f"{rounds:>15} {'ok' if r['ratio'] <= GOAL else 'over':>5} "
            f"{outputs:>8}"
        )
    print(f"goal: ratio <= {GOAL}; 'HTTP ms' = client latency - server-side latency, per request")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from serving_energy.serving.server_process import thread_environment

    # The server gets these variables from ServerProcess; this process gets the same ones.
    os.environ.update(thread_environment(args.threads))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    model_dir = standin(args)
    prompts = load_prompts(args, model_dir)
    log(f"{len(prompts)} prompts; engines {args.engines}")
    results = [bench_engine(engine, model_dir, prompts, args) for engine in args.engines]
    print_table(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
