"""Tables of the paper-scale rehearsal (benchmarks/rehearse_paper_scale.py), for docs/.

Reads ``<work-dir>/rehearsal.json`` and, where given, the plans made of the rehearsal's config
before it ran (``snakemake plan`` on ``rehearsal.yaml``: plan.json or refused.json) and prints
Markdown: per model and stage the wall time, peak memory and disk; per run tokens/s, roofline
fraction, validity and the check's verdict; the CPU time ratios <ONNX>/<TORCH> and <OV>/<TORCH>
per size category beside the paper's Table 4; and the forecast against the measured wall time.

    .venv/bin/python benchmarks/report_paper_scale.py /work/rehearsal/rehearsal.json \
        --config /work/rehearsal/rehearsal.yaml \
        --forecast f32=plan-f32.json --forecast openvino-default=plan-ov-default.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import yaml

# The paper's Table 4, last section: time of <ONNX, CPU> and <OV, CPU> against <TORCH, CPU>.
PAPER_RATIOS = {1: (0.85, 0.73), 2: (0.81, 0.52), 3: (0.70, 0.41)}
PREPARATION = ("build", "export_onnx", "export_openvino", "export_torchscript")
CHECKS = ("check_onnx", "check_openvino", "check_torchscript", "check_openvino_default")
RUNS = ("run_torch", "run_onnx", "run_openvino", "run_torchscript", "run_openvino_default")


def gb(value) -> str:
    return "" if not value else f"{value / 1e9:.1f}"


def stage_table(stages: list[dict], parameters: dict) -> list[str]:
    out = [
        "| model | parameters | stage | status | wall s | peak memory GB | disk GB |",
        "|---|---:|---|---|---:|---:|---:|",
    ]
    for s in stages:
        if not s["stage"].startswith(("build", "export_", "check_")):
            continue
        extra = ""
        if s["stage"].startswith("check_"):
            r = s["record"]
            extra = f" ({r.get('verdict')}, max diff {r.get('max_logit_diff', 0):.3g})"
        out.append(
            f"| {s['model']} | {parameters[s['model']] / 1e9:.2f} B | {s['stage']} | "
            f"{s['status']}{extra} | {s['wall_s']} | {gb(s['peak_rss_bytes'])} | "
            f"{gb(s['disk_bytes'])} |"
        )
    return out


def run_table(stages: list[dict]) -> list[str]:
    out = [
        "| model | run | wall s | load s | inference s | tokens/s | roofline fraction | "
        "precision | valid | peak memory GB |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for s in stages:
        if not s["stage"].startswith("run_"):
            continue
        r = s["record"]
        # None where the weights stay in the cache (no memory bound) or no calibration ran.
        fraction = r.get("roofline_fraction")
        out.append(
            f"| {s['model']} | {s['stage'].removeprefix('run_')} | {s['wall_s']} | "
            f"{r.get('load_duration_s', 0):.1f} | {r.get('inference_s', 0):.1f} | "
            f"{r.get('tokens_per_s', 0):.2f} | {'–' if fraction is None else f'{fraction:.3f}'} | "
            f"{r.get('compute_precision')} | {r.get('valid')} | {gb(s['peak_rss_bytes'])} |"
        )
    return out


def ratio_table(stages: list[dict], categories: dict[str, int]) -> list[str]:
    inference = {
        (s["model"], s["stage"].removeprefix("run_")): s["record"].get("inference_s")
        for s in stages
        if s["stage"].startswith("run_") and s["status"] == "ok"
    }
    out = [
        "| size category | models | ONNX/TORCH | OV/TORCH (f32) | OV/TORCH (default) | "
        "paper ONNX/TORCH | paper OV/TORCH |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for category in sorted(set(categories.values())):
        models = [m for m, c in categories.items() if c == category and (m, "torch") in inference]
        if not models:
            continue

        def mean_ratio(engine: str, models=models) -> str:
            ratios = [
                inference[(m, engine)] / inference[(m, "torch")]
                for m in models
                if inference.get((m, engine))
            ]
            return f"{statistics.mean(ratios):.2f}" if ratios else "-"

        paper = PAPER_RATIOS.get(category, ("-", "-"))
        out.append(
            f"| {category} | {', '.join(models)} | {mean_ratio('onnx')} | "
            f"{mean_ratio('openvino')} | {mean_ratio('openvino_default')} | "
            f"{paper[0]} | {paper[1]} |"
        )
    return out


def forecast_table(stages: list[dict], forecasts: dict[str, dict]) -> list[str]:
    """Forecast (the plan before the rehearsal) against each measured stage and in total."""
    plans = {name: json.loads(Path(path).read_text()) for name, path in forecasts.items()}
    main, default = plans.get("f32"), plans.get("openvino-default")
    if main is None:
        return []
    models = {m["model"]: m for m in main["models"]}
    default_models = {m["model"]: m for m in (default or main)["models"]}
    lines = {(r["model"], r["configuration"]): r for r in main["run_lines"]}
    default_lines = {(r["model"], r["configuration"]): r for r in (default or main)["run_lines"]}

    def forecast_of(stage: dict) -> float | None:
        model, name = stage["model"], stage["stage"]
        walls = models[model]["stage_wall_s"]
        if name == "build":
            figure = walls.get("build_standin")
        elif name == "export_torchscript":
            figure = walls.get("export_torchscript-cpu")
        elif name.startswith("export_"):
            figure = walls.get(name)
        elif name == "check_openvino_default":
            figure = default_models[model]["stage_wall_s"].get("check_openvino-cpu")
        elif name.startswith("check_"):
            figure = walls.get(f"{name}-cpu")
        elif name == "run_openvino_default":
            figure = default_lines[(model, "openvino-cpu")]["run_wall_s"]
        else:
            figure = lines[(model, f"{name.removeprefix('run_')}-cpu")]["run_wall_s"]
        return figure["value"] if figure else None

    groups: dict[str, list[float]] = {"preparation": [0, 0], "checks": [0, 0], "runs": [0, 0]}
    for s in stages:
        if s["status"] != "ok":
            continue
        forecast = forecast_of(s)
        if forecast is None:
            continue
        group = (
            "preparation"
            if s["stage"] in PREPARATION
            else "checks"
            if s["stage"] in CHECKS
            else "runs"
        )
        groups[group][0] += forecast
        groups[group][1] += s["wall_s"]
    once = sum(f["value"] for k, f in main["once_s"].items() if k != "analysis_s")
    out = ["| part | forecast s | measured s | forecast / measured |", "|---|---:|---:|---:|"]
    total_f = once
    total_m = 0.0
    for name, (forecast, measured) in groups.items():
        total_f += forecast
        total_m += measured
        ratio = forecast / measured if measured else float("nan")
        out.append(f"| {name} | {forecast:.0f} | {measured:.0f} | {ratio:.2f} |")
    out.append(f"| calibrations (in the first run) | {once:.0f} | (in runs) | |")
    out.append(
        f"| **total** | {total_f:.0f} | {total_m:.0f} | {total_f / total_m:.2f} |"
        if total_m
        else ""
    )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rehearsal", type=Path)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--forecast", action="append", default=[], help="name=plan.json")
    args = parser.parse_args(argv)
    record = json.loads(args.rehearsal.read_text())
    config = yaml.safe_load(args.config.read_text())
    categories = {m: e["size_category"] for m, e in config["models"].items()}
    stages = record["stages"]
    out = ["## Per model and stage", ""]
    out += stage_table(stages, record["parameters"])
    out += ["", "## Runs", ""] + run_table(stages)
    out += ["", "## Time ratios beside the paper's Table 4", ""] + ratio_table(stages, categories)
    forecasts = dict(item.split("=", 1) for item in args.forecast)
    if forecasts:
        out += ["", "## Forecast against measured", ""] + forecast_table(stages, forecasts)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
