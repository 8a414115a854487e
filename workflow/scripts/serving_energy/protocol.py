"""One measured run: cooldown, idle, load, warm-up, inference, stop, idle; every phase on one clock.

The run's files appear only when the run succeeded: they are written to a staging folder and
moved into place last. A run that fails (a request failed, the server died, an engine disagreed
with itself) keeps everything measured so far in a separate failure folder with its reason, and
raises, so the workflow marks the job failed and re-runs it next time.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from serving_energy.client import RequestRecord, send_prompts
from serving_energy.dataset import Prompt
from serving_energy.io import atomic_dir, write_atomic_json
from serving_energy.machine import describe_machine
from serving_energy.meters import Sampler, build_meters, window_metrics
from serving_energy.server_process import ServerError, ServerProcess, ServerSpec
from serving_energy.study import Configuration

logger = logging.getLogger("serving_energy.protocol")

PHASES = ("cooldown", "idle-before", "load", "warm-up", "inference", "stop", "idle-after")
RUN_FILES = ("run.json", "requests.parquet", "timeline.parquet")


class RunFailed(RuntimeError):
    """The run cannot count as a data point; its data were kept in the failure folder."""


@dataclass(frozen=True)
class CooldownSettings:
    min_s: float = 60.0
    adaptive: bool = True
    cpu_usage_below_pct: float = 10.0
    timeout_s: float = 600.0


@dataclass(frozen=True)
class CooldownRecord:
    waited_s: float
    settled: bool  # False when the adaptive wait ran out before the CPU was back near idle
    last_cpu_usage_pct: float | None


def cool_down(
    settings: CooldownSettings,
    cpu_usage_pct: Callable[[float], float] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CooldownRecord:
    """Wait at least ``min_s``; if adaptive, until CPU usage is below the threshold or timeout."""
    if cpu_usage_pct is None:
        import psutil

        def cpu_usage_pct(interval_s: float) -> float:
            return psutil.cpu_percent(interval=interval_s)

    started = clock()
    sleep(settings.min_s)
    if not settings.adaptive:
        return CooldownRecord(clock() - started, True, None)
    usage = cpu_usage_pct(1.0)
    while usage >= settings.cpu_usage_below_pct:
        if clock() - started >= settings.timeout_s:
            logger.warning(
                "cooldown: CPU still at %.1f %% after %.0f s; starting anyway (recorded)",
                usage,
                settings.timeout_s,
            )
            return CooldownRecord(clock() - started, False, usage)
        usage = cpu_usage_pct(1.0)
    return CooldownRecord(clock() - started, True, usage)


@dataclass(frozen=True)
class RunPaths:
    out_dir: Path
    failed_dir: Path
    server_log: Path


def requests_frame(records: Sequence[RequestRecord]) -> pl.DataFrame:
    schema = {
        "index": pl.Int64,
        "task_id": pl.String,
        "prompt": pl.String,
        "output": pl.String,
        "prompt_tokens": pl.Int64,
        "new_tokens": pl.Int64,
        "start_s": pl.Float64,
        "end_s": pl.Float64,
        "latency_s": pl.Float64,
        "server_latency_s": pl.Float64,
        "status": pl.String,
        "http_status": pl.Int64,
        "error": pl.String,
        "warmup": pl.Boolean,
    }
    rows = [{**asdict(record), "warmup": record.index < 0} for record in records]
    return pl.DataFrame(rows, schema=schema)


def read_equivalence(check_path: Path | None) -> dict:
    """The configuration's equivalence status; torch is the reference and has no check."""
    if check_path is None:
        return {"status": "reference", "passed": True}
    check = json.loads(Path(check_path).read_text())
    return {"status": "passed" if check.get("passed") else "failed", **check}


def measure_run(
    settings: Mapping,
    prompts: Sequence[Prompt],
    model_dir: Path,
    artefact_dir: Path | None,
    check_path: Path | None,
    paths: RunPaths,
    workflow_dir: Path | None = None,
    progress: bool = True,
) -> dict:
    """Run the protocol once and write run.json, requests.parquet and timeline.parquet.

    ``settings`` holds plain values (see the measure rule): study, model, engine, provider, rep,
    threads, generation, protocol, meters.
    """
    configuration = Configuration(settings["engine"], settings["provider"])
    protocol = settings["protocol"]
    generation = settings["generation"]
    equivalence = read_equivalence(check_path)
    started_at = datetime.now(UTC).isoformat()
    machine = describe_machine(workflow_dir)

    cooldown = cool_down(CooldownSettings(**protocol["cooldown"]))
    logger.info("cooldown: waited %.1f s (settled: %s)", cooldown.waited_s, cooldown.settled)

    meter_settings = dict(settings["meters"])
    meters = build_meters(meter_settings)
    sampler = Sampler(meters, interval_s=meter_settings.get("interval_s", 0.1))
    spec = ServerSpec(
        model_name=settings["model"]["alias"],
        model_dir=Path(model_dir),
        artefact_dir=Path(artefact_dir) if artefact_dir else None,
        engine=configuration.engine,
        provider=configuration.provider,
        threads=int(settings["threads"]),
        host=protocol["host"],
        max_length=generation["max_length"],
        max_new_tokens=generation["max_new_tokens"],
    )
    server = ServerProcess(spec, paths.server_log)
    records: list[RequestRecord] = []
    warmup: list[RequestRecord] = []
    health: dict = {}
    failure: str | None = None
    sampler.start()
    try:
        _idle(sampler, "idle-before", protocol["idle_before_s"])
        sampler.mark("load", "start")
        health = server.start(protocol["server_start_timeout_s"])
        sampler.mark("load", "end")
        _check_device(health, configuration)
        if protocol["warmup_requests"]:
            sampler.mark("warm-up", "start")
            warmup = send_prompts(
                server.base_url,
                [prompts[i % len(prompts)] for i in range(protocol["warmup_requests"])],
                timeout_s=protocol["request_timeout_s"],
                progress=False,
                first_index=-protocol["warmup_requests"],
            )
            sampler.mark("warm-up", "end")
        sampler.mark("inference", "start")
        records = send_prompts(
            server.base_url, prompts, timeout_s=protocol["request_timeout_s"], progress=progress
        )
        sampler.mark("inference", "end")
        server.check_alive()
        sampler.mark("stop", "start")
        server.stop()
        sampler.mark("stop", "end")
        _idle(sampler, "idle-after", protocol["idle_after_s"])
    except (ServerError, RunFailed) as error:
        failure = str(error)
    except Exception as error:  # whatever broke, what was measured so far must be kept
        logger.exception("run aborted")
        failure = f"{type(error).__name__}: {error}"
    finally:
        server.stop()
        timeline = sampler.stop()

    failed_requests = [record for record in records if not record.ok]
    if failure is None and failed_requests:
        first = failed_requests[0]
        failure = (
            f"{len(failed_requests)} of {len(records)} requests failed; first: request "
            f"{first.index} ({first.task_id}): {first.error}"
        )
    if failure is None and len(records) != len(prompts):
        failure = f"only {len(records)} of {len(prompts)} prompts were sent"

    n_ok = sum(record.ok for record in records)
    new_tokens = sum(record.new_tokens or 0 for record in records)
    metrics = _metrics_or_none(timeline, n_ok, new_tokens, failed=failure is not None)
    run = {
        "status": "failed" if failure else "ok",
        "failure": failure,
        "model": settings["model"]["alias"],
        "model_info": dict(settings["model"]),
        "standin": "standin" in settings["model"],
        "size_category": settings["model"]["size_category"],
        "engine": configuration.engine,
        "provider": configuration.provider,
        "configuration": configuration.label,
        "configuration_id": configuration.id,
        "rep": settings["rep"],
        "started_at": started_at,
        "finished_at": datetime.now(UTC).isoformat(),
        "threads": settings["threads"],
        "n_requests": len(records),
        "n_failed": len(failed_requests),
        "n_warmup_requests": len(warmup),
        "new_tokens": new_tokens,
        "load_duration_s": _phase_duration(timeline, "load"),
        "server_load_duration_s": health.get("load_duration_s"),
        "cooldown": asdict(cooldown),
        "equivalence": equivalence,
        "engine_info": health.get("engine_info"),
        "device": health.get("device"),
        "metrics": metrics.to_dict() if metrics is not None else {},
        "generation": dict(generation),
        "protocol": dict(protocol),
        "meters": meter_settings,
        "run_order": settings.get("run_order"),
        "study": settings.get("study"),
        "config_sha256": settings.get("config_sha256"),
        "machine": machine,
    }
    frame = requests_frame([*warmup, *records])
    if failure:
        _keep_failed(paths.failed_dir, run, frame, timeline)
        raise RunFailed(f"run failed: {failure} (data kept in {paths.failed_dir})")
    with atomic_dir(paths.out_dir) as staging:
        frame.write_parquet(staging / "requests.parquet")
        timeline.to_parquet(staging / "timeline.parquet")
        write_atomic_json(staging / "run.json", run)
    return run


def _metrics_or_none(timeline, n_ok: int, new_tokens: int, *, failed: bool):
    """Window metrics of the inference phase; None for a failed run that never completed one
    (a server that did not start), so the failure is kept with its own reason."""
    if failed and timeline.phase_bounds("inference") is None:
        return None
    return window_metrics(
        timeline,
        phase="inference",
        baseline_phases=("idle-before", "idle-after"),
        n_requests=n_ok or None,
        new_tokens=new_tokens or None,
    )


def _idle(sampler: Sampler, phase: str, seconds: float) -> None:
    sampler.mark(phase, "start")
    time.sleep(seconds)
    sampler.mark(phase, "end")


def _phase_duration(timeline, phase: str) -> float | None:
    bounds = timeline.phase_bounds(phase)
    return None if bounds is None else bounds[1] - bounds[0]


def _check_device(health: Mapping, configuration: Configuration) -> None:
    """A CUDA configuration that runs on the CPU is an error, not a data point."""
    device = str(health.get("device") or "")
    if configuration.provider == "cuda" and not device.startswith("cuda"):
        raise RunFailed(
            f"{configuration.label} is running on {device or 'an unknown device'}, not CUDA"
        )
    if configuration.provider == "cpu" and device.startswith("cuda"):
        raise RunFailed(f"{configuration.label} is running on {device}, not the CPU")


def _keep_failed(failed_dir: Path, run: dict, frame: pl.DataFrame, timeline) -> None:
    attempt = Path(failed_dir) / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    attempt.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(attempt / "requests.parquet")
    timeline.to_parquet(attempt / "timeline.parquet")
    write_atomic_json(attempt / "failure.json", run)


def remove_incomplete(out_dir: Path) -> None:
    """Clear a run folder that lacks any of its files (left by a killed job) before a new run."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not all((out_dir / name).is_file() for name in RUN_FILES):
        shutil.rmtree(out_dir)
