"""What a study costs before it starts, and how much is left while it runs.

Disk, memory and wall time, per model and in total, from the config alone (a *forecast*) and, as
runs, exports and checks exist, from what they measured (*measured*). Every figure carries its
source, and its unit is in its key (``disk_bytes``, ``wall_s``):

- parameters: a stand-in's counted from its geometry, a Hub model's from its ``parameters:``;
- disk: parameters x bytes per parameter of each artefact (fp32 unless the export's precision
  says otherwise), or the folder's size where it exists;
- memory: the per-stage multiples of ``study/footprint.py`` (the ``mem_mb`` every job declares);
- a run's wall time: cooldown, the two idle windows and the model load from the protocol and
  defaults, inference from the host's memory-bandwidth bound times a roofline fraction
  (measured per configuration once runs exist, a conservative default before); a measured
  run's own wall time replaces the forecast for the runs left of the same model and
  configuration;
- exports and checks: a rate per billion parameters measured at the paper's scale before this
  module existed (docs/paper-scale.md), or the Snakemake benchmark file of a finished job.

The defaults are deliberately round and conservative: a plan that errs should err long.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from serving_energy.core.machine import gpus
from serving_energy.study.design import apply_cuda_policy, expected_prompt_count
from serving_energy.study.footprint import (
    BYTES_PER_FP32,
    estimate_parameters,
    export_stage,
    job_memory_mb,
)
from serving_energy.study.geometries import resolve_standin_spec
from serving_energy.study.layout import ResultsLayout, RunKey, export_artefact
from serving_energy.study.vocabulary import ENGINE_SPECS, Configuration

FORECAST = "forecast"  # from the config and this module's defaults
MEASURED = "measured"  # from what this study's jobs recorded

# A fixed part (what a tiny stand-in's job takes: interpreter, imports, writing) and seconds per
# billion parameters, from the jobs measured at 1.41 B and 2.65 B on a 2-core EPYC VM before this
# plan existed (issue 20: build 47 s). Each export's are in its engine's spec
# (EngineSpec.export_seconds).
STAGE_SECONDS = {"build_standin": (5.0, 30.0)}
DOWNLOAD_BYTES_PER_S = 50e6  # an assumption: the Hub's speed here is unknown
# Loading: a fixed start (interpreter, imports, server) plus bytes at the rate of the engine's
# spec (EngineSpec.load_bytes_per_s; measured here: torch 5 s, ONNX Runtime and OpenVINO 25-26 s
# for 10.6 GB).
SERVER_START_S = 4.0
JOB_OVERHEAD_S = 6.0  # Snakemake starting a job and its interpreter importing the libraries
# Decode speed before any run: a fraction of the bandwidth bound. At stablecode-3b's geometry
# torch, the slowest engine, reached 0.48 of it on the CPU (ONNX Runtime 0.96, OpenVINO ~1), so
# 0.4 errs long for every engine. And at least this many seconds per token (Python's per-token
# cost, which dominates tiny models: about 0.5 ms for the smoke study's stand-ins).
DEFAULT_ROOFLINE_FRACTION = {"cpu": 0.4, "cuda": 0.2}
MIN_SECONDS_PER_TOKEN = {"cpu": 0.001, "cuda": 0.002}
DEFAULT_READ_BANDWIDTH_GB_S = {"cpu": 10.0, "cuda": 1000.0}
ADAPTIVE_COOLDOWN_EXTRA_S = 10.0  # waiting for the CPU to settle after the minimum
BANDWIDTH_CALIBRATION_S = 60.0  # once per host and thread count
ANALYSIS_S = 90.0  # merge, statistics, tables, figures, package
# An equivalence check decodes every prompt twice (torch, then the engine: counted at torch's
# speed, the slower) and then reads each whole sequence's logits three times in one forward pass
# each (torch, torch at another thread count for the noise floor, the engine), a pass costing
# about one token's read of the weights.
EQUIVALENCE_DECODE_PASSES = 2
EQUIVALENCE_SEQUENCE_PASSES = 3


@dataclass(frozen=True)
class Figure:
    """A number and where it comes from (FORECAST or MEASURED)."""

    value: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source}


@dataclass(frozen=True)
class Machine:
    memory_bytes: int | None
    free_disk_bytes: int | None
    cpus: int
    gpu_memory_bytes: int | None  # None: no GPU here, or its memory unknown
    read_bandwidth_gb_s: Mapping[str, Figure]  # per provider


@dataclass(frozen=True)
class ModelPlan:
    model: str
    parameters: Figure
    snapshot_disk_bytes: Figure
    export_disk_bytes: Mapping[str, Figure]  # folder under results/engines -> size
    transient_disk_bytes: int
    peak_memory_bytes: int
    peak_memory_stage: str
    gpu_memory_bytes: int | None  # a CUDA run's need (None: no CUDA configuration)
    stage_wall_s: Mapping[str, Figure]  # build or download, each export, the checks


@dataclass(frozen=True)
class RunLine:
    """The runs of one model in one configuration."""

    model: str
    configuration: str
    runs: int
    done: int
    run_wall_s: Figure  # one run
    components_s: Mapping[str, float]  # cooldown, idle, load, inference, overhead (one run)
    tokens_per_s: Figure

    @property
    def left_wall_s(self) -> float:
        return (self.runs - self.done) * self.run_wall_s.value


@dataclass(frozen=True)
class Plan:
    study: str
    created_at: str
    machine: Machine
    models: Sequence[ModelPlan]
    runs: Sequence[RunLine]
    once_s: Mapping[str, Figure]  # calibrations and analysis
    remove_after_use: bool
    problems: Sequence[str] = field(default_factory=tuple)
    remedies: Sequence[str] = field(default_factory=tuple)
    cluster: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    # -- totals --------------------------------------------------------------------------------
    @property
    def n_runs(self) -> int:
        return sum(line.runs for line in self.runs)

    @property
    def n_done(self) -> int:
        return sum(line.done for line in self.runs)

    def disk_bytes(self) -> dict[str, int]:
        snapshots = sum(int(m.snapshot_disk_bytes.value) for m in self.models)
        exports = [sum(int(f.value) for f in m.export_disk_bytes.values()) for m in self.models]
        transient = max((m.transient_disk_bytes for m in self.models), default=0)
        # With remove_after_use one model's exports are on disk at a time (run_order by_model).
        peak_exports = max(exports, default=0) if self.remove_after_use else sum(exports)
        present = sum(
            int(f.value)
            for m in self.models
            for f in (m.snapshot_disk_bytes, *m.export_disk_bytes.values())
            if f.source == MEASURED
        )
        peak = snapshots + peak_exports + transient
        return {
            "snapshots_disk_bytes": snapshots,
            "exports_disk_bytes": sum(exports),
            "peak_disk_bytes": peak,
            "present_disk_bytes": present,
            # What the study still has to write at its peak (what is there is already off the
            # free space); an upper bound under remove_after_use, where present exports go.
            "still_needed_disk_bytes": max(0, peak - present),
        }

    def wall_s(self) -> dict[str, float]:
        by_component: dict[str, float] = {}
        for line in self.runs:
            for name, seconds in line.components_s.items():
                by_component[f"runs_{name}_s"] = (
                    by_component.get(f"runs_{name}_s", 0.0) + seconds * line.runs
                )
        preparation = sum(f.value for m in self.models for f in m.stage_wall_s.values())
        once = sum(f.value for f in self.once_s.values())
        runs = sum(line.runs * line.run_wall_s.value for line in self.runs)
        left = sum(line.left_wall_s for line in self.runs)
        prepared_left = sum(
            f.value for m in self.models for f in m.stage_wall_s.values() if f.source == FORECAST
        )
        once_left = sum(f.value for f in self.once_s.values() if f.source == FORECAST)
        return {
            **by_component,
            "preparation_s": preparation,
            "once_s": once,
            "runs_s": runs,
            "total_s": preparation + once + runs,
            "left_s": left + prepared_left + once_left,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "created_at": self.created_at,
            "fits": not self.problems,
            "problems": list(self.problems),
            "remedies": list(self.remedies),
            "machine": {
                "memory_bytes": self.machine.memory_bytes,
                "free_disk_bytes": self.machine.free_disk_bytes,
                "cpus": self.machine.cpus,
                "gpu_memory_bytes": self.machine.gpu_memory_bytes,
                "read_bandwidth_gb_s": {
                    p: f.to_dict() for p, f in self.machine.read_bandwidth_gb_s.items()
                },
            },
            "runs_total": self.n_runs,
            "runs_done": self.n_done,
            "disk": self.disk_bytes(),
            "wall": self.wall_s(),
            "remove_after_use": self.remove_after_use,
            "models": [_model_dict(m) for m in self.models],
            "run_lines": [_line_dict(line) for line in self.runs],
            "once_s": {name: f.to_dict() for name, f in self.once_s.items()},
            "cluster": [dict(row) for row in self.cluster],
        }


def _model_dict(m: ModelPlan) -> dict[str, Any]:
    out = asdict(m)
    out["parameters"] = m.parameters.to_dict()
    out["snapshot_disk_bytes"] = m.snapshot_disk_bytes.to_dict()
    out["export_disk_bytes"] = {k: f.to_dict() for k, f in m.export_disk_bytes.items()}
    out["stage_wall_s"] = {k: f.to_dict() for k, f in m.stage_wall_s.items()}
    return out


def _line_dict(line: RunLine) -> dict[str, Any]:
    return {
        "model": line.model,
        "configuration": line.configuration,
        "runs": line.runs,
        "done": line.done,
        "run_wall_s": line.run_wall_s.to_dict(),
        "components_s": dict(line.components_s),
        "tokens_per_s": line.tokens_per_s.to_dict(),
        "left_wall_s": line.left_wall_s,
    }


# -- measurements already made ---------------------------------------------------------------
@dataclass(frozen=True)
class MeasuredRun:
    key: RunKey
    wall_s: float | None
    tokens_per_s: float | None
    roofline_fraction: float | None


def read_measured_runs(keys: Iterable[RunKey], layout: ResultsLayout) -> dict[RunKey, MeasuredRun]:
    """The complete runs among ``keys`` (a missing or unreadable record is a run left to do)."""
    found = {}
    for key in keys:
        path = layout.run_record(key)
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if record.get("failure") is not None:
            continue
        roofline = record.get("roofline") or {}
        found[key] = MeasuredRun(
            key,
            _seconds_between(record.get("started_at"), record.get("finished_at")),
            roofline.get("tokens_per_s"),
            roofline.get("roofline_fraction"),
        )
    return found


def _seconds_between(start: str | None, end: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def read_benchmark_s(path: Path) -> float | None:
    """The wall time of a finished job from its Snakemake ``benchmark:`` file (column ``s``)."""
    try:
        header, values = Path(path).read_text().splitlines()[:2]
        return float(dict(zip(header.split("\t"), values.split("\t"), strict=False))["s"])
    except (OSError, ValueError, KeyError):
        return None


def folder_bytes(path: Path) -> int | None:
    path = Path(path)
    if not path.is_dir():
        return None
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# -- what the plan is made from ---------------------------------------------------------------
def model_parameters(config: Mapping, model: str) -> tuple[int | None, str]:
    """A model's parameters before it exists, and where the count comes from: a stand-in's
    counted from its geometry, a Hub model's from its config's `parameters:`."""
    entry = config["models"][model]
    if "standin" in entry:
        return estimate_parameters(resolve_standin_spec(entry["standin"])), "geometry"
    return entry.get("parameters"), "config"


def gpu_memory_bytes() -> int | None:
    """The first NVIDIA GPU's memory from nvidia-smi (None: no GPU, or its memory unknown)."""
    for gpu in gpus():
        # nvidia-smi prints e.g. "81559 MiB".
        value, _, unit = gpu.get("memory_total", "").partition(" ")
        if value.isdigit() and unit == "MiB":
            return int(value) * 2**20
    return None


def machine_here(
    layout: ResultsLayout,
    threads: int,
    providers: Iterable[str],
    memory_bytes: int | None,
    measured: bool = True,
) -> Machine:
    """This machine: memory, the free disk where results go, and the read bandwidth its host
    calibration measured (the default where none exists yet)."""
    root = layout.root if layout.root.exists() else Path(".")
    free = shutil.disk_usage(root).free
    bandwidth = {}
    path = layout.bandwidth_calibration(socket.gethostname(), threads)
    for provider in providers:
        figure = Figure(DEFAULT_READ_BANDWIDTH_GB_S[provider], FORECAST)
        if measured and path.is_file():
            # The calibration's JSON is read as it is (meters.roofline, which wrote it, imports
            # the engines' runtimes, which the planning env has not).
            try:
                value = json.loads(path.read_text()).get(f"{provider}_read_bandwidth_gb_s")
            except (OSError, json.JSONDecodeError):
                value = None
            if value:
                figure = Figure(float(value), MEASURED)
        bandwidth[provider] = figure
    return Machine(memory_bytes, free, os.cpu_count() or 1, gpu_memory_bytes(), bandwidth)


# -- the forecast ----------------------------------------------------------------------------
def bytes_per_parameter(configuration: Configuration, config: Mapping) -> float:
    """Bytes per weight an engine reads per token: its compute precision (the engine's spec)."""
    return float(ENGINE_SPECS[configuration.engine].read_bytes_per_parameter(config))


def export_bytes_per_parameter(engine: str, config: Mapping) -> float:
    return float(ENGINE_SPECS[engine].artefact_bytes_per_parameter(config))


def new_tokens_per_request(config: Mapping) -> float:
    generation = config["generation"]
    if generation.get("max_new_tokens"):
        return float(generation["max_new_tokens"])
    prompts = config["prompts"]
    mean_prompt = (prompts["min_tokens"] + prompts["max_tokens"]) / 2
    return max(1.0, generation["max_length"] - mean_prompt)


def stage_seconds(stage: str, parameters: float) -> float:
    exports = {export_stage(engine): spec for engine, spec in ENGINE_SPECS.items() if spec.exported}
    if stage in exports:
        fixed, per_billion = exports[stage].export_seconds
    else:
        fixed, per_billion = STAGE_SECONDS[stage]
    return fixed + per_billion * parameters / 1e9


def load_seconds(engine: str, artefact_bytes: float) -> float:
    return SERVER_START_S + artefact_bytes / ENGINE_SPECS[engine].load_bytes_per_s


def seconds_per_token(
    configuration: Configuration,
    parameters: float,
    config: Mapping,
    read_bandwidth_gb_s: float,
    fraction: float,
) -> float:
    bytes_per_token = parameters * bytes_per_parameter(configuration, config)
    bound_s = bytes_per_token / (read_bandwidth_gb_s * 1e9)
    return max(bound_s / fraction, MIN_SECONDS_PER_TOKEN[configuration.provider])


def make_plan(
    config: Mapping,
    configurations: Sequence[Configuration],
    parameters: Mapping[str, tuple[int | None, str]],
    machine: Machine,
    layout: ResultsLayout | None = None,
    measured: bool = True,
    cluster_runtimes_min: Mapping[str, float] | None = None,
    benchmarks: Path | None = None,
    created_at: str | None = None,
) -> Plan:
    """The study's plan. ``parameters``: model -> (count, where it comes from). With
    ``measured=False`` nothing the study recorded is read (the plan before anything ran)."""
    layout = layout or ResultsLayout()
    reps = config["repetitions"]
    n_prompts = expected_prompt_count(config["prompts"]["limit"])
    tokens = new_tokens_per_request(config)
    keys = [
        RunKey(model, configuration, rep)
        for model in config["models"]
        for configuration in configurations
        for rep in range(1, reps + 1)
    ]
    done = read_measured_runs(keys, layout) if measured else {}
    measured_fraction = _measured_fractions(done.values())

    problems: list[str] = []
    remedies: list[str] = []
    models: list[ModelPlan] = []
    lines: list[RunLine] = []
    providers = sorted({c.provider for c in configurations})
    for model in config["models"]:
        count, count_source = parameters[model]
        if not count:
            problems.append(
                f"models.{model}: no parameter count (set `parameters:`), so its disk, memory and "
                "time cannot be forecast"
            )
            count = 0
        models.append(
            _model_plan(
                model,
                count,
                count_source,
                config,
                configurations,
                layout,
                measured,
                benchmarks,
                machine,
            )
        )
        for configuration in configurations:
            lines.append(
                _run_line(
                    model, count, configuration, config, machine, done, measured_fraction,
                    n_prompts, tokens, reps,
                )
            )  # fmt: skip

    once = {}
    calibration_dir = layout.root / "calibration"
    calibrated = measured and calibration_dir.is_dir() and any(calibration_dir.rglob("idle.json"))
    once["idle_calibration_s"] = Figure(
        0.0 if calibrated else float(config["validity"]["calibration_idle_s"]),
        MEASURED if calibrated else FORECAST,
    )
    bandwidth = measured and calibration_dir.is_dir() and any(calibration_dir.rglob("bandwidth-*"))
    once["bandwidth_calibration_s"] = Figure(
        0.0 if bandwidth else BANDWIDTH_CALIBRATION_S * len(providers),
        MEASURED if bandwidth else FORECAST,
    )
    once["analysis_s"] = Figure(ANALYSIS_S, FORECAST)

    plan = Plan(
        study=config["study"]["name"],
        created_at=created_at or datetime.now().astimezone().isoformat(timespec="seconds"),
        machine=machine,
        models=models,
        runs=lines,
        once_s=once,
        remove_after_use=bool(config["export"].get("remove_after_use")),
    )
    _check_fits(plan, problems, remedies)
    cluster = _cluster_rows(plan, cluster_runtimes_min) if cluster_runtimes_min else []
    return dataclasses.replace(plan, problems=problems, remedies=remedies, cluster=cluster)


def _measured_fractions(runs: Iterable[MeasuredRun]) -> dict[str, float]:
    by_configuration: dict[str, list[float]] = {}
    for run in runs:
        if run.roofline_fraction:
            by_configuration.setdefault(run.key.configuration.id, []).append(run.roofline_fraction)
    return {c: statistics.median(v) for c, v in by_configuration.items()}


def _export_folders(
    model: str, configurations: Sequence[Configuration], layout
) -> dict[str, Configuration]:
    folders = {}
    for configuration in configurations:
        folder = layout.export_dir(model, configuration)
        if folder is not None:
            folders.setdefault(folder.as_posix(), configuration)
    return folders


def _model_plan(
    model, count, count_source, config, configurations, layout, measured, benchmarks, machine
):
    entry = config["models"][model]
    standin = "standin" in entry
    snapshot_dir = Path("resources") / "models" / model
    snapshot = folder_bytes(snapshot_dir) if measured else None
    snapshot_fig = (
        Figure(float(snapshot), MEASURED)
        if snapshot
        else Figure(float(count * BYTES_PER_FP32), FORECAST)
    )
    exports = {}
    stage_wall: dict[str, Figure] = {}
    first = "build_standin" if standin else "fetch_model"
    stage_wall[first] = _stage_figure(
        benchmarks, f"{first}/{model}.tsv", measured,
        stage_seconds("build_standin", count) if standin
        else JOB_OVERHEAD_S + count * BYTES_PER_FP32 / DOWNLOAD_BYTES_PER_S,
    )  # fmt: skip
    transient = 0
    for folder, configuration in _export_folders(model, configurations, layout).items():
        size = folder_bytes(Path(folder)) if measured else None
        forecast = count * export_bytes_per_parameter(configuration.engine, config)
        exports[folder] = Figure(float(size), MEASURED) if size else Figure(forecast, FORECAST)
        engine, artefact = configuration.engine, export_artefact(configuration)
        # One key per export job: export_onnx, export_torchscript-cpu.
        stage_wall[f"export_{artefact.replace('/', '-')}"] = _stage_figure(
            benchmarks, f"export/{model}/{artefact}.tsv", measured,
            stage_seconds(export_stage(engine), count),
        )  # fmt: skip
        transient = max(transient, int(forecast * ENGINE_SPECS[engine].export_transient_copies))
    check_prompts = config["equivalence"]["prompts"]
    check_steps = check_prompts * (
        EQUIVALENCE_DECODE_PASSES * config["equivalence"]["max_new_tokens"]
        + EQUIVALENCE_SEQUENCE_PASSES
    )
    for configuration in configurations:
        if configuration.is_reference:
            continue
        engine_bytes = count * export_bytes_per_parameter(configuration.engine, config)
        forecast = (
            JOB_OVERHEAD_S
            + load_seconds("torch", count * BYTES_PER_FP32)
            + load_seconds(configuration.engine, engine_bytes)
            + check_steps
            * seconds_per_token(
                Configuration("torch", configuration.provider), count, config,
                machine.read_bandwidth_gb_s[configuration.provider].value,
                DEFAULT_ROOFLINE_FRACTION[configuration.provider],
            )
        )  # fmt: skip
        stage_wall[f"check_{configuration.id}"] = _stage_figure(
            benchmarks, f"check/{model}/{configuration.id}.tsv", measured, forecast
        )
    exported = dict.fromkeys(c.engine for c in configurations if c.exported)
    stages = [
        *(["build_standin"] if standin else []),
        *(export_stage(engine) for engine in exported),
        *(["check_engine"] if exported else []),
        "measure",
    ]
    need_mb = {stage: job_memory_mb(stage, count) for stage in stages}
    peak_stage = max(need_mb, key=need_mb.get)
    cuda = any(c.provider == "cuda" for c in configurations)
    return ModelPlan(
        model=model,
        parameters=Figure(float(count), count_source),
        snapshot_disk_bytes=snapshot_fig,
        export_disk_bytes=exports,
        transient_disk_bytes=transient,
        peak_memory_bytes=need_mb[peak_stage] * 1_000_000,
        peak_memory_stage=peak_stage,
        gpu_memory_bytes=job_memory_mb("measure", count) * 1_000_000 if cuda else None,
        stage_wall_s=stage_wall,
    )


def _stage_figure(
    benchmarks: Path | None, relative: str, measured: bool, forecast: float
) -> Figure:
    if measured and benchmarks is not None:
        seconds = read_benchmark_s(benchmarks / relative)
        if seconds is not None:
            return Figure(seconds, MEASURED)
    return Figure(forecast, FORECAST)


def _run_line(
    model, count, configuration, config, machine, done, fractions, n_prompts, tokens, reps
):
    protocol = config["protocol"]
    cooldown = protocol["cooldown"]
    measured_runs = [
        run
        for key, run in done.items()
        if key.model == model and key.configuration == configuration
    ]
    bandwidth = machine.read_bandwidth_gb_s[configuration.provider]
    fraction = fractions.get(configuration.id)
    source = MEASURED if fraction else FORECAST
    fraction = fraction or DEFAULT_ROOFLINE_FRACTION[configuration.provider]
    per_token = seconds_per_token(configuration, count, config, bandwidth.value, fraction)
    own_speeds = [r.tokens_per_s for r in measured_runs if r.tokens_per_s]
    if own_speeds:
        per_token, source = 1.0 / statistics.median(own_speeds), MEASURED
    artefact_bytes = count * (
        BYTES_PER_FP32
        if configuration.is_reference
        else export_bytes_per_parameter(configuration.engine, config)
    )
    components = {
        "cooldown": cooldown["min_s"] + (ADAPTIVE_COOLDOWN_EXTRA_S if cooldown["adaptive"] else 0),
        "idle": float(protocol["idle_before_s"] + protocol["idle_after_s"]),
        "load": load_seconds(configuration.engine, artefact_bytes),
        "inference": (n_prompts + protocol["warmup_requests"]) * tokens * per_token,
        "overhead": JOB_OVERHEAD_S,
    }
    forecast = sum(components.values())
    walls = [r.wall_s for r in measured_runs if r.wall_s]
    run_wall = Figure(statistics.median(walls), MEASURED) if walls else Figure(forecast, FORECAST)
    return RunLine(
        model=model,
        configuration=configuration.id,
        runs=reps,
        done=len(measured_runs),
        run_wall_s=run_wall,
        components_s=components,
        tokens_per_s=Figure(1.0 / per_token, source),
    )


def _check_fits(plan: Plan, problems: list[str], remedies: list[str]) -> None:
    machine = plan.machine
    if machine.memory_bytes and plan.models:
        largest = max(plan.models, key=lambda m: m.peak_memory_bytes)
        if largest.peak_memory_bytes > machine.memory_bytes:
            problems.append(
                f"memory: {largest.model}'s {largest.peak_memory_stage} needs "
                f"{_gb(largest.peak_memory_bytes)}, this machine has {_gb(machine.memory_bytes)}"
            )
            remedies.append(
                f"leave out {largest.model} (or every model above "
                f"{_gb(machine.memory_bytes)} of need), or run on a machine with more memory"
            )
    cuda_models = [m for m in plan.models if m.gpu_memory_bytes]
    if machine.gpu_memory_bytes and cuda_models:
        largest = max(cuda_models, key=lambda m: m.gpu_memory_bytes or 0)
        if (largest.gpu_memory_bytes or 0) > machine.gpu_memory_bytes:
            problems.append(
                f"GPU memory: {largest.model} needs {_gb(largest.gpu_memory_bytes)} on the GPU, "
                f"which has {_gb(machine.gpu_memory_bytes)}"
            )
            remedies.append(f"leave {largest.model}'s CUDA configurations out")
    disk = plan.disk_bytes()
    needed = disk["still_needed_disk_bytes"]
    if machine.free_disk_bytes is not None and needed > machine.free_disk_bytes:
        problems.append(
            f"disk: the study needs {_gb(disk['peak_disk_bytes'])} at its peak (snapshots "
            f"{_gb(disk['snapshots_disk_bytes'])}, exports {_gb(disk['exports_disk_bytes'])}"
            + (", one model's exports at a time" if plan.remove_after_use else "")
            + f"), {_gb(disk['present_disk_bytes'])} of it already there; "
            f"{_gb(machine.free_disk_bytes)} are free"
        )
        if not plan.remove_after_use:
            with_removal = dataclasses.replace(plan, remove_after_use=True).disk_bytes()
            remedies.append(
                "export: {remove_after_use: true} with protocol: {run_order: {mode: by_model}} "
                f"(one model's exports at a time: {_gb(with_removal['peak_disk_bytes'])} at the "
                "peak)"
            )
        remedies.append(
            "fewer models, or OpenVINO weights in fp16/int8 (export.openvino_weight_format)"
        )


def stage_rule(stage: str) -> str:
    """The rule whose jobs a plan's stage key counts (``export_torchscript-cpu`` -> export)."""
    if stage.startswith("check_"):
        return "check_engine"
    if stage.startswith("export_"):
        return "export"
    return stage


def _cluster_rows(plan: Plan, runtimes_min: Mapping[str, float]) -> list[dict[str, Any]]:
    """Whether each rule's requested runtime (minutes) covers its longest forecast job."""
    longest: dict[str, float] = {}
    for model in plan.models:
        for stage, figure in model.stage_wall_s.items():
            rule = stage_rule(stage)
            longest[rule] = max(longest.get(rule, 0.0), figure.value)
    for line in plan.runs:
        longest["measure"] = max(longest.get("measure", 0.0), line.run_wall_s.value)
    rows = []
    for rule, seconds in sorted(longest.items()):
        requested = runtimes_min.get(rule, runtimes_min.get("default"))
        rows.append(
            {
                "rule": rule,
                "requested_runtime_s": None if requested is None else requested * 60,
                "longest_forecast_s": round(seconds, 1),
                "covered": requested is None or requested * 60 >= seconds,
            }
        )
    return rows


# -- one call for the rule and the measure job -------------------------------------------------
def study_configurations(config: Mapping, gpu_here: bool) -> list[Configuration]:
    """The configurations the workflow plans (CUDA ones left out under 'auto' without a GPU)."""
    configurations = [Configuration(c["engine"], c["provider"]) for c in config["configurations"]]
    return list(
        apply_cuda_policy(configurations, config["cuda"]["policy"], gpu_here).configurations
    )


def profile_runtimes_min(profile: Path) -> dict[str, float]:
    """Each rule's requested runtime (minutes) in a Snakemake workflow profile ('default': the
    default-resources one); empty when the profile sets none."""
    try:
        settings = yaml.safe_load(Path(profile).read_text()) or {}
    except OSError:
        return {}
    runtimes = {}
    default = settings.get("default-resources")
    if isinstance(default, Mapping) and "runtime" in default:
        runtimes["default"] = float(default["runtime"])
    for rule, resources in (settings.get("set-resources") or {}).items():
        if isinstance(resources, Mapping) and "runtime" in resources:
            runtimes[rule] = float(resources["runtime"])
    return runtimes


def study_plan(
    config: Mapping,
    memory_bytes: int | None,
    configurations: Sequence[Configuration] | None = None,
    layout: ResultsLayout | None = None,
    measured: bool = True,
    cluster_profile: Path | None = None,
    gpu_here: bool = False,
) -> Plan:
    """The plan of the study in the working directory, from its config and what it measured."""
    layout = layout or ResultsLayout()
    if configurations is None:
        configurations = study_configurations(config, gpu_here)
    threads = config.get("threads") or os.cpu_count() or 1
    providers = sorted({c.provider for c in configurations})
    return make_plan(
        config,
        configurations,
        {model: model_parameters(config, model) for model in config["models"]},
        machine_here(layout, threads, providers, memory_bytes, measured),
        layout,
        measured=measured,
        cluster_runtimes_min=profile_runtimes_min(cluster_profile) if cluster_profile else None,
        benchmarks=layout.root / "benchmarks",
    )


# -- progress while the study runs -------------------------------------------------------------
def progress_line(plan: Plan) -> str:
    """The per-run console line: runs done and left, and the time left."""
    wall = plan.wall_s()
    left = plan.n_runs - plan.n_done
    return (
        f"study: {plan.n_done} of {plan.n_runs} runs done, {left} left, "
        f"about {format_duration(wall['left_s'])} to go (forecast from the runs so far)"
    )


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def _gb(value: float | None) -> str:
    return "?" if value is None else f"{value / 1e9:.1f} GB"


# -- the readable plan -------------------------------------------------------------------------
def to_markdown(plan: Plan) -> str:
    disk, wall = plan.disk_bytes(), plan.wall_s()
    machine = plan.machine
    out = [f"# Plan of the study `{plan.study}`", "", f"Made {plan.created_at}."]
    if plan.problems:
        out += ["", "**This study does not fit this machine:**", ""]
        out += [f"- {p}" for p in plan.problems]
        out += ["", "What would make it fit:", ""] + [f"- {r}" for r in plan.remedies]
    else:
        out += ["", "The study fits this machine (memory and disk)."]
    out += [
        "",
        f"- runs: {plan.n_runs} ({plan.n_done} done)",
        f"- wall time: {format_duration(wall['total_s'])} in all, "
        f"{format_duration(wall['left_s'])} left",
        f"- disk at the peak: {_gb(disk['peak_disk_bytes'])} (free: {_gb(machine.free_disk_bytes)}); "
        f"snapshots {_gb(disk['snapshots_disk_bytes'])}, exports {_gb(disk['exports_disk_bytes'])}"
        + (", one model's exports at a time" if plan.remove_after_use else ""),
        f"- largest job: {_largest_job(plan)} (memory here: {_gb(machine.memory_bytes)}"
        + (f", GPU {_gb(machine.gpu_memory_bytes)}" if machine.gpu_memory_bytes else "")
        + ")",
        "- read bandwidth: "
        + ", ".join(
            f"{p} {f.value:.1f} GB/s ({f.source})" for p, f in machine.read_bandwidth_gb_s.items()
        ),
        "",
        "## Wall time by component",
        "",
        "| component | time | share |",
        "|---|---:|---:|",
    ]
    total = wall["total_s"] or 1.0
    rows = [("preparation (builds or downloads, exports, checks)", wall["preparation_s"])]
    rows += [
        (name.removeprefix("runs_").removesuffix("_s") + " (runs)", seconds)
        for name, seconds in wall.items()
        if name.startswith("runs_") and name != "runs_s"
    ]
    rows += [("calibrations and analysis", wall["once_s"])]
    out += [f"| {name} | {format_duration(s)} | {100 * s / total:.1f} % |" for name, s in rows]
    out += [
        "",
        "## Per model",
        "",
        "| model | parameters | snapshot | exports | largest job | preparation |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for m in plan.models:
        exports = sum(f.value for f in m.export_disk_bytes.values())
        sources = {f.source for f in m.export_disk_bytes.values()}
        out.append(
            f"| {m.model} | {m.parameters.value / 1e9:.2f} B ({m.parameters.source}) | "
            f"{_gb(m.snapshot_disk_bytes.value)} ({m.snapshot_disk_bytes.source}) | "
            f"{_gb(exports)} ({'/'.join(sorted(sources)) or '-'}) | "
            f"{m.peak_memory_stage} {_gb(m.peak_memory_bytes)} | "
            f"{format_duration(sum(f.value for f in m.stage_wall_s.values()))} |"
        )
    out += [
        "",
        "## Per run (model and configuration)",
        "",
        "| model | configuration | runs (done) | one run | tokens/s | left |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for line in plan.runs:
        out.append(
            f"| {line.model} | {line.configuration} | {line.runs} ({line.done}) | "
            f"{format_duration(line.run_wall_s.value)} ({line.run_wall_s.source}) | "
            f"{line.tokens_per_s.value:.2f} ({line.tokens_per_s.source}) | "
            f"{format_duration(line.left_wall_s)} |"
        )
    if plan.cluster:
        out += [
            "",
            "## Cluster profile: requested runtime against the longest forecast job",
            "",
            "| rule | requested | longest forecast | covered |",
            "|---|---:|---:|---|",
        ]
        for row in plan.cluster:
            requested = row["requested_runtime_s"]
            out.append(
                f"| {row['rule']} | {'-' if requested is None else format_duration(requested)} | "
                f"{format_duration(row['longest_forecast_s'])} | "
                f"{'yes' if row['covered'] else '**no**'} |"
            )
    out += [
        "",
        "Figures marked *forecast* come from the config and the defaults of "
        "`workflow/scripts/serving_energy/study/plan.py`; *measured* ones from this study's runs, "
        "benchmark files and folders.",
        "",
    ]
    return "\n".join(out)


def _largest_job(plan: Plan) -> str:
    if not plan.models:
        return "none"
    m = max(plan.models, key=lambda m: m.peak_memory_bytes)
    return f"{m.model}'s {m.peak_memory_stage}, {_gb(m.peak_memory_bytes)}"
