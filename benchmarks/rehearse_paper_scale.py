"""The paper's scale rehearsed on this machine: a reduced ``config/paper-geometry.yaml`` study,
model by model, every stage through the real workflow, with each stage's wall time, peak memory
and disk recorded.

For each model, in order, one Snakemake invocation per stage (so each stage is timed and its
memory sampled on its own): the stand-in's build; its ONNX, OpenVINO and TorchScript exports;
the three equivalence checks; then, for the *measured* models, one run of each CPU configuration
(few prompts, one repetition) and, with ``--openvino-default``, OpenVINO checked and run again at
its ``default`` inference precision (bf16 on CPUs with AVX512-BF16 or AMX). Peak memory is the
largest summed resident set of the invocation's job processes (Snakemake's own process left out),
sampled every 0.25 s. When a model is done its folder and its exports are removed, after their
size has been recorded, so a study larger than the disk runs model by model (the run records keep
each artefact's SHA-256). A stage that fails is recorded with its log and the stages that need it
are skipped (a failed TorchScript export leaves the ONNX and OpenVINO checks and runs); the next
model still runs. Stages already recorded ok are not run again (a stopped rehearsal resumes).

    .venv/bin/python benchmarks/rehearse_paper_scale.py --work-dir /work/rehearsal \
        --measure codeparrot-small bloomz-560m pythia-1.4b codegemma-2b phi-2 \
        --export-only starcoderbase-1b bloomz-1b1 tinyllama stablecode-3b --openvino-default

Writes ``<work-dir>/rehearsal.json`` after every stage (nothing is lost when the session ends);
benchmarks/report_paper_scale.py turns it into the tables of docs/paper-scale.md. Needs an
otherwise idle machine: the runs' validity gates refuse a busy one.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from serving_energy.study.footprint import estimate_parameters  # noqa: E402
from serving_energy.study.geometries import resolve_standin_spec  # noqa: E402

CPU_CONFIGURATIONS = ("torch", "onnx", "openvino", "torchscript")
EXPORTS = {
    "onnx": "results/engines/{model}/onnx",
    "openvino": "results/engines/{model}/openvino",
    "torchscript": "results/engines/{model}/torchscript/cpu",
}


@dataclass
class Stage:
    model: str
    stage: str
    target: str
    status: str = "pending"  # ok | failed | skipped
    wall_s: float | None = None
    peak_rss_bytes: int | None = None
    disk_bytes: int | None = None
    log: str | None = None
    record: dict = field(default_factory=dict)


def needs(stage: str) -> set[str]:
    """The stages a stage cannot run without: a failed TorchScript export leaves the ONNX and
    OpenVINO checks and runs to be measured."""
    engine = stage.split("_", 1)[1].removesuffix("_default") if "_" in stage else ""
    if stage == "build":
        return set()
    if stage.startswith("export_"):
        return {"build"}
    if stage.startswith("check_"):
        return {"build", f"export_{engine}"}
    if engine == "torch":
        return {"build"}
    return {"build", f"export_{engine}", f"check_{engine}"}


def reduced_config(models: list[str], args) -> dict:
    """config/paper-geometry.yaml cut to the rehearsal: the given models, the CPU configurations,
    a few prompts, one repetition, short idle windows."""
    config = yaml.safe_load((REPO / "config" / "paper-geometry.yaml").read_text())
    unknown = sorted(set(models) - set(config["models"]))
    if unknown:
        raise SystemExit(f"not a model of config/paper-geometry.yaml: {', '.join(unknown)}")
    config["study"]["name"] = "paper-geometry-rehearsal"
    config["models"] = {alias: config["models"][alias] for alias in models}
    config["configurations"] = [{"engine": e, "provider": "cpu"} for e in CPU_CONFIGURATIONS]
    config["repetitions"] = 1
    config["prompts"]["limit"] = args.prompts
    config["generation"]["max_new_tokens"] = args.new_tokens
    config["equivalence"].update(prompts=args.check_prompts, max_new_tokens=args.check_tokens)
    config["protocol"].update(idle_before_s=args.idle_s, idle_after_s=args.idle_s)
    config["protocol"]["cooldown"].update(min_s=5, timeout_s=180)
    config["analysis"]["configurations"] = {"exclude": []}
    return config


def tree_rss_bytes(root: psutil.Process) -> int:
    total = 0
    for child in root.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_stage(stage: Stage, work_dir: Path, configfile: Path, log_dir: Path) -> None:
    log = log_dir / f"{stage.model}.{stage.stage}.log"
    command = [
        str(REPO / ".venv" / "bin" / "snakemake"),
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(work_dir),
        "--workflow-profile", str(REPO / "profiles" / "default"),
        "--configfile", str(configfile),
        "--cores", str(os.cpu_count()),
        "--rerun-incomplete",  # a stage cut off by the end of a session is made again
        stage.target,
    ]  # fmt: skip
    started = time.monotonic()
    peak = 0
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=work_dir)
        root = psutil.Process(process.pid)
        stop = threading.Event()

        def sample():
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, tree_rss_bytes(root))
                stop.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        returncode = process.wait()
        stop.set()
        sampler.join()
    stage.wall_s = round(time.monotonic() - started, 1)
    stage.peak_rss_bytes = peak
    stage.log = str(log)
    stage.status = "ok" if returncode == 0 else "failed"


def folder_bytes(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def check_summary(path: Path) -> dict:
    check = read_json(path)
    keys = (
        "passed", "verdict", "verdict_reason", "compute_precision", "max_logit_diff",
        "logit_scale", "noise_floor_logit_diff", "mismatched_tokens", "token_agreement",
        "reference_margin_at_first_divergence", "n_prompts", "n_tokens",
    )  # fmt: skip
    return {key: check[key] for key in keys if key in check}


def run_summary(path: Path) -> dict:
    run = read_json(path)
    if not run:
        return {}
    metrics = run.get("metrics") or {}
    return {
        "status": run.get("status"),
        "failure": run.get("failure"),
        "valid": run.get("valid"),
        "validity_reasons": (run.get("validity") or {}).get("reasons"),
        "load_duration_s": run.get("load_duration_s"),
        "new_tokens": run.get("new_tokens"),
        "inference_s": metrics.get("duration_s"),
        "energy_per_token_j": metrics.get("energy_per_token_j"),
        "compute_precision": (run.get("engine_info") or {}).get("compute_precision"),
        **(run.get("roofline") or {}),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--measure", nargs="*", default=[], help="models exported, checked, run")
    parser.add_argument("--export-only", nargs="*", default=[], help="models exported, checked")
    parser.add_argument("--openvino-default", action="store_true")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--check-prompts", type=int, default=3)
    parser.add_argument("--check-tokens", type=int, default=16)
    parser.add_argument("--idle-s", type=int, default=10)
    parser.add_argument("--keep-artefacts", action="store_true")
    args = parser.parse_args(argv)

    work_dir = args.work_dir.resolve()
    log_dir = work_dir / "rehearsal-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    models = [*args.measure, *args.export_only]
    config = reduced_config(models, args)
    configfile = work_dir / "rehearsal.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    default_config = copy.deepcopy(config)
    default_config["engines"]["openvino"]["inference_precision"] = "default"
    default_configfile = work_dir / "rehearsal-openvino-default.yaml"
    default_configfile.write_text(yaml.safe_dump(default_config, sort_keys=False))

    out = work_dir / "rehearsal.json"
    previous = read_json(out)
    done = {(s["model"], s["stage"]): s for s in previous.get("stages", []) if s["status"] == "ok"}
    stages: list[Stage] = [Stage(**s) for s in done.values()]
    settings = {key: value for key, value in vars(args).items() if key != "work_dir"}

    def save():
        record = {
            "settings": settings,
            "machine": {
                "cpus": os.cpu_count(),
                "memory_bytes": psutil.virtual_memory().total,
                "hostname": os.uname().nodename,
            },
            "parameters": {
                m: estimate_parameters(resolve_standin_spec(config["models"][m]["standin"]))
                for m in models
            },
            "stages": [asdict(s) for s in stages],
        }
        out.write_text(json.dumps(record, indent=1))

    for model in models:
        plan = [("build", f"resources/models/{model}")]
        plan += [(f"export_{e}", path.format(model=model)) for e, path in EXPORTS.items()]
        plan += [(f"check_{e}", f"results/engines/{model}/{e}-cpu/check.json") for e in EXPORTS]
        if model in args.measure:
            plan += [
                (f"run_{e}", f"results/runs/{model}/{e}-cpu/rep1/run.json")
                for e in CPU_CONFIGURATIONS
            ]
            if args.openvino_default:
                plan += [
                    ("check_openvino_default", f"results/engines/{model}/openvino-cpu/check.json"),
                    ("run_openvino_default", f"results/runs/{model}/openvino-cpu/rep1/run.json"),
                ]
        failed: set[str] = set()
        for name, target in plan:
            if (model, name) in done:
                continue
            stage = Stage(model, name, target)
            stages.append(stage)
            blocked = sorted(needs(name) & failed)
            if blocked:
                stage.status = "skipped"
                stage.record = {"skipped_because": blocked}
                save()
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {model}: {name} ...", flush=True)
            configs = default_configfile if name.endswith("_default") else configfile
            run_stage(stage, work_dir, configs, log_dir)
            path = work_dir / target
            if name == "build" or name.startswith("export_"):
                stage.disk_bytes = folder_bytes(path)
            elif name.startswith("check_"):
                stage.record = check_summary(path)
            elif name.startswith("run_"):
                stage.record = run_summary(path)
                kept = log_dir / f"{model}.{name}.run.json"
                if path.exists():
                    shutil.copy(path, kept)
            print(
                f"    {stage.status} in {stage.wall_s} s, peak {stage.peak_rss_bytes / 1e9:.2f} GB"
                + (f", {stage.disk_bytes / 1e9:.2f} GB on disk" if stage.disk_bytes else ""),
                flush=True,
            )
            if stage.status == "failed":
                failed.add(name)
            save()
        if not args.keep_artefacts:
            for path in [
                work_dir / "resources/models" / model,
                *(work_dir / p.format(model=model) for p in EXPORTS.values()),
            ]:
                shutil.rmtree(path, ignore_errors=True)
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
