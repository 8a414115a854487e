"""One measured run: cooldown, idle, load, warm-up, inference, stop, idle; every phase on one clock.

The run's files appear only when the run succeeded, and never at the cost of an earlier run: see
``run_store``. A run that fails (a request failed, the server died, a CUDA configuration ran on the
CPU) or is interrupted (Ctrl-C, ``kill``, ``scancel``, Snakemake gone) keeps everything measured
so far in a failure folder with its reason, and raises, so the workflow marks the job failed and
measures the run again next time.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from serving_energy.core.lifecycle import Interrupted, seal
from serving_energy.core.machine import describe_machine
from serving_energy.core.progress import countdown, say
from serving_energy.data.dataset import Prompt, verified_prompts
from serving_energy.data.manifest import tree_sha256, verify_manifest
from serving_energy.meters import Sampler, build_meters, window_metrics
from serving_energy.meters.calibration import idle_power, load_or_calibrate, measure_idle
from serving_energy.meters.roofline import HostBandwidth, load_or_calibrate_host, run_roofline
from serving_energy.meters.timeline import Timeline
from serving_energy.meters.window import WindowMetrics
from serving_energy.serving.client import RequestRecord, send_prompts
from serving_energy.serving.run_record import CooldownRecord, RunRecord, requests_frame
from serving_energy.serving.run_settings import CooldownSettings, RunSettings, resolve_threads
from serving_energy.serving.run_store import begin_attempt, keep_failure, publish_run
from serving_energy.serving.server_process import ServerError, ServerProcess, ServerSpec
from serving_energy.serving.validity import (
    BASELINE_PHASES,
    COMPONENTS,
    ValidityThresholds,
    evaluate,
    gate_quantities,
)
from serving_energy.study.layout import ResultsLayout
from serving_energy.study.vocabulary import RECORDED_PACKAGES, Configuration

logger = logging.getLogger("serving_energy.serving.protocol")


class RunFailed(RuntimeError):
    """The run cannot count as a data point; its data were kept in the failure folder."""


class RunInterrupted(RunFailed):
    """The run was stopped from outside (a signal, or its supervisor died); data were kept."""


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
    if settings.min_s >= 5 or settings.adaptive:
        say(
            f"cooldown: {settings.min_s:.0f} s"
            + (
                f", then until CPU usage is below {settings.cpu_usage_below_pct:g} % "
                f"(at most {settings.timeout_s:.0f} s)"
                if settings.adaptive
                else ""
            )
        )
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
class RunInputs:
    prompts: Sequence[Prompt]
    model_dir: Path
    artefact_dir: Path | None = None
    check_path: Path | None = None
    integrity: Mapping[str, str] = field(default_factory=dict)  # how each input was verified

    @classmethod
    def verified(
        cls,
        prompts_path: Path,
        prompts_manifest: Path,
        expected_prompts: int,
        model_dir: Path,
        artefact_dir: Path | None = None,
        check_path: Path | None = None,
    ) -> RunInputs:
        """The run's inputs, each checked to be what the workflow made (or an error naming it)."""
        prompts = verified_prompts(prompts_path, prompts_manifest, expected_prompts)
        integrity = {
            "prompts": f"verified: {len(prompts)} prompts match {Path(prompts_manifest).name}",
            "model": verify_manifest(model_dir),
            "model_sha256": tree_sha256(model_dir),
        }
        if artefact_dir is not None:
            integrity["engine"] = verify_manifest(artefact_dir)
            integrity["engine_sha256"] = tree_sha256(artefact_dir)
        return cls(prompts, Path(model_dir), artefact_dir, check_path, integrity)


@dataclass(frozen=True)
class RunLogs:
    """The job's own log and the server's; both are kept with the run or the failed attempt."""

    job_log: Path | None
    server_log: Path


def read_equivalence(check_path: Path | None) -> dict:
    """The configuration's equivalence status; torch is the reference and has no check."""
    if check_path is None:
        return {"status": "reference", "passed": True}
    check = json.loads(Path(check_path).read_text())
    return {"status": "passed" if check.get("passed") else "failed", **check}


def measure_run(
    settings: RunSettings,
    provenance: Mapping,
    inputs: RunInputs,
    layout: ResultsLayout,
    logs: RunLogs,
    workflow_dir: Path | None = None,
    progress: bool = True,
    thresholds: ValidityThresholds | None = None,
    calibration_idle_s: float = 0.0,
    calibrate_bandwidth: bool = False,
) -> RunRecord:
    """Run the protocol once; write run.json, requests.parquet and timeline.parquet in place.

    ``provenance`` (study, config hash, run order) is recorded, never compared: it does not
    change what the run measures. ``thresholds`` judge the run's validity (recorded with it);
    ``calibration_idle_s`` > 0 calibrates the host's idle on its first run;
    ``calibrate_bandwidth`` measures its memory bandwidth once per thread count (the roofline).
    """
    thresholds = thresholds or ValidityThresholds()
    key = settings.key
    attempt = begin_attempt(layout, key)
    equivalence = read_equivalence(inputs.check_path)
    machine = describe_machine(RECORDED_PACKAGES, workflow_dir)
    threads, threads_source = resolve_threads(settings.threads)
    say(f"{key}: measuring ({threads} engine threads)")
    phases = _run_phases(
        settings,
        inputs,
        layout,
        logs,
        threads,
        progress=progress,
        thresholds=thresholds,
        calibration_idle_s=calibration_idle_s,
        calibrate_bandwidth=calibrate_bandwidth,
    )
    record = _run_record(
        settings,
        inputs,
        phases,
        thresholds,
        started_at=attempt.started_at,
        threads=(threads, threads_source),
        equivalence=equivalence,
        attempt=attempt.provenance(),
        provenance=provenance,
        machine=machine,
    )
    run = record.to_dict()
    frame = requests_frame([*phases.warmup, *phases.records])

    def write_files(folder: Path) -> None:
        frame.write_parquet(folder / "requests.parquet")
        phases.timeline.to_parquet(folder / "timeline.parquet")

    kept_logs = {"server.log": logs.server_log}
    if logs.job_log is not None:
        kept_logs["measure.log"] = logs.job_log
    if record.failure:
        folder = keep_failure(attempt, run, write_files, kept_logs)
        message = f"run failed: {record.failure} (data kept in {folder})"
        if phases.interrupted is not None:
            raise RunInterrupted(message) from phases.interrupted
        raise RunFailed(message)
    seal()
    superseded = publish_run(attempt, run, write_files, kept_logs)
    if superseded is not None:
        logger.info("the run it replaces was kept in %s", superseded)
    say(_done(record, superseded))
    return record


@dataclass
class _Phases:
    """What the run's phases left, however far they got."""

    timeline: Timeline | None = None
    health: dict = field(default_factory=dict)
    cooldown: CooldownRecord | None = None
    calibration: dict | None = None
    calibration_status: str = "no idle calibration (validity.calibration_idle_s is 0)"
    bandwidth: HostBandwidth | str = "the host's bandwidth was not calibrated"
    warmup: list[RequestRecord] = field(default_factory=list)
    records: list[RequestRecord] = field(default_factory=list)
    failure: str | None = None
    interrupted: Interrupted | None = None


def _run_phases(
    settings: RunSettings,
    inputs: RunInputs,
    layout: ResultsLayout,
    logs: RunLogs,
    threads: int,
    *,
    progress: bool,
    thresholds: ValidityThresholds,
    calibration_idle_s: float,
    calibrate_bandwidth: bool,
) -> _Phases:
    """Cooldown, calibrations, idle, load, warm-up, inference, stop and idle, each marked on the
    sampler's clock. Whatever breaks, what was measured so far comes back with the failure."""
    key, protocol, prompts = settings.key, settings.protocol, inputs.prompts
    configuration = key.configuration
    meter_settings = dict(settings.meters)
    sampler = Sampler(
        build_meters(meter_settings), interval_s=meter_settings.get("interval_s", 0.1)
    )
    spec = ServerSpec(
        model_name=key.model,
        model_dir=Path(inputs.model_dir),
        artefact_dir=Path(inputs.artefact_dir) if inputs.artefact_dir else None,
        engine=configuration.engine,
        provider=configuration.provider,
        threads=threads,
        host=protocol.host,
        max_length=settings.generation.max_length,
        max_new_tokens=settings.generation.max_new_tokens,
        engine_options=settings.engine_options,
    )
    server = ServerProcess(spec, logs.server_log)
    out = _Phases()
    sampler.start()
    try:
        sampler.mark("cooldown", "start")
        out.cooldown = cool_down(protocol.cooldown)
        sampler.mark("cooldown", "end")
        logger.info(
            "cooldown: waited %.1f s (settled: %s)", out.cooldown.waited_s, out.cooldown.settled
        )
        if calibration_idle_s > 0:
            sampler.mark("calibration", "start")
            out.calibration, out.calibration_status = load_or_calibrate(
                layout.calibration(socket.gethostname()),
                lambda: measure_idle(meter_settings, calibration_idle_s),
                thresholds.idle_cpu_usage_max_pct,
            )
            sampler.mark("calibration", "end")
        if calibrate_bandwidth:
            sampler.mark("calibration", "start")
            out.bandwidth = _host_bandwidth(layout, threads, configuration.provider)
            sampler.mark("calibration", "end")
        _idle(sampler, "idle-before", protocol.idle_before_s)
        sampler.mark("load", "start")
        out.health = server.start(protocol.server_start_timeout_s)
        sampler.mark("load", "end")
        _check_device(out.health, configuration)
        if protocol.warmup_requests:
            sampler.mark("warm-up", "start")
            out.warmup = send_prompts(
                server.base_url,
                [prompts[i % len(prompts)] for i in range(protocol.warmup_requests)],
                timeout_s=protocol.request_timeout_s,
                progress=False,
                first_index=-protocol.warmup_requests,
            )
            sampler.mark("warm-up", "end")
        logger.info("inference window: %d prompts", len(prompts))
        sampler.mark("inference", "start")
        out.records = send_prompts(
            server.base_url, prompts, timeout_s=protocol.request_timeout_s, progress=progress
        )
        sampler.mark("inference", "end")
        server.check_alive()
        sampler.mark("stop", "start")
        server.stop()
        sampler.mark("stop", "end")
        _idle(sampler, "idle-after", protocol.idle_after_s)
    except Interrupted as error:
        out.interrupted = error
        out.failure = f"interrupted: {error}"
    except (ServerError, RunFailed) as error:
        out.failure = str(error)
    except Exception as error:  # whatever broke, what was measured so far must be kept
        logger.exception("run aborted")
        out.failure = f"{type(error).__name__}: {error}"
    finally:
        server.stop()
        out.timeline = sampler.stop()
    return out


def _run_record(
    settings: RunSettings,
    inputs: RunInputs,
    phases: _Phases,
    thresholds: ValidityThresholds,
    *,
    started_at: str,
    threads: tuple[int, str],
    equivalence: Mapping,
    attempt: Mapping,
    provenance: Mapping,
    machine: Mapping,
) -> RunRecord:
    """The run as measured, judged: its failure (if any), metrics, validity and roofline."""
    key, records, timeline = settings.key, phases.records, phases.timeline
    provider = key.configuration.provider
    n_prompts = len(inputs.prompts)
    failed_requests = [record for record in records if not record.ok]
    failure = phases.failure
    if failure is None and failed_requests:
        first = failed_requests[0]
        failure = (
            f"{len(failed_requests)} of {len(records)} requests failed; first: request "
            f"{first.index} ({first.task_id}): {first.error}"
        )
    if failure is None and len(records) != n_prompts:
        failure = f"only {len(records)} of {n_prompts} prompts were sent"

    n_ok = sum(record.ok for record in records)
    new_tokens = sum(record.new_tokens or 0 for record in records)
    try:
        metrics = _metrics_or_none(timeline, n_ok, new_tokens, failed=failure is not None)
        validity = None if metrics is None else _validity(
            timeline, metrics, thresholds, phases.calibration, phases.calibration_status,
            n_answered=n_ok, n_expected=n_prompts, provider=provider,
        )  # fmt: skip
    except Exception as error:  # the data must be kept even if judging them fails
        logger.exception("computing the run's metrics failed")
        failure = failure or f"computing the run's metrics failed: {type(error).__name__}: {error}"
        metrics, validity = None, None
    roofline = _roofline(inputs, phases.health, provider, metrics, phases.bandwidth)
    if validity is not None and not validity["valid"] and failure is None:
        logger.warning("%s is flagged invalid: %s", key, "; ".join(validity["reasons"]))
    return RunRecord(
        key=key,
        failure=failure,
        model_info=dict(settings.model),
        standin=settings.standin,
        started_at=started_at,
        finished_at=datetime.now(UTC).isoformat(),
        threads=threads[0],
        threads_source=threads[1],
        n_requests=len(records),
        n_failed=len(failed_requests),
        n_warmup_requests=len(phases.warmup),
        new_tokens=new_tokens,
        load_duration_s=_phase_duration(timeline, "load"),
        server_load_duration_s=phases.health.get("load_duration_s"),
        cooldown=phases.cooldown,
        equivalence=equivalence,
        inputs=dict(inputs.integrity),
        engine_info=phases.health.get("engine_info"),
        device=phases.health.get("device"),
        metrics=metrics,
        roofline=roofline,
        validity=validity,
        identity=dict(settings.identity),
        protocol=settings.protocol,
        attempt=attempt,
        provenance=provenance,
        machine=machine,
    )


def _done(record: RunRecord, superseded: Path | None) -> str:
    """The one line a finished run prints."""
    metrics = record.metrics
    energy = metrics.global_.energy_j if metrics else None
    return (
        f"{record.key}: done in {(metrics.duration_s if metrics else 0) or 0:.2f} s, "
        + (f"{energy:.4g} J" if energy is not None else "energy unavailable")
        + f" ({metrics.global_.method if metrics else None})"
        + ("" if record.valid else f"; flagged invalid: {'; '.join(record.validity['reasons'])}")
        + (f"; the run it replaces is kept in {superseded}" if superseded else "")
    )


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


def _host_bandwidth(layout: ResultsLayout, threads: int, provider: str) -> HostBandwidth | str:
    """The host's bandwidth calibration, or why there is none (a roofline is never worth a run)."""
    try:
        return load_or_calibrate_host(
            layout.bandwidth_calibration(socket.gethostname(), threads), threads, provider == "cuda"
        )
    except Exception as error:
        logger.warning("memory bandwidth calibration failed: %s", error)
        return f"bandwidth calibration failed: {type(error).__name__}: {error}"


def _roofline(inputs: RunInputs, health: Mapping, provider: str, metrics, bandwidth) -> dict:
    if metrics is None:
        return {"reason": "the run has no inference window"}
    if isinstance(bandwidth, str):
        return {"reason": bandwidth}
    try:
        point = run_roofline(
            inputs.model_dir,
            (health.get("engine_info") or {}).get("compute_precision"),
            provider,
            metrics.new_tokens,
            metrics.duration_s,
            bandwidth,
        )
    except Exception as error:
        return {"reason": f"{type(error).__name__}: {error}"}
    if point["roofline_cache_resident"]:
        logger.info("no roofline fraction: %s", point["reason"])
    elif point["roofline_above_bound"]:
        logger.warning(
            "decoding at %.3g tokens/s is %.3f of its bound (%.3g tokens/s at %.1f GB/s): the "
            "host calibration did not bound this engine; its roofline fraction means nothing",
            point["tokens_per_s"],
            point["roofline_fraction"],
            point["roofline_bound_tokens_per_s"],
            point["roofline_read_bandwidth_gb_s"],
        )
    return point


def _validity(
    timeline, metrics: WindowMetrics, thresholds, calibration, calibration_status: str, **run_facts
) -> dict:
    """The run's validity verdict, with everything it was judged on (see ``validity``)."""
    quantities = gate_quantities(
        timeline, metrics, _baseline_power(timeline), calibration=calibration, **run_facts
    )
    verdict = evaluate(quantities, thresholds)
    return {
        **verdict.to_dict(),
        "quantities": quantities,
        "thresholds": asdict(thresholds),
        "calibration": calibration_status,
    }


def _baseline_power(timeline) -> dict[str, dict[str, float | None]]:
    """Per component, the mean power of each idle window the run has."""
    baseline: dict[str, dict[str, float | None]] = {component: {} for component in COMPONENTS}
    for phase in BASELINE_PHASES:
        if timeline.phase_bounds(phase) is None:
            continue
        power, _methods, _usage = idle_power(timeline, phase)
        for component in COMPONENTS:
            baseline[component][phase] = power[component]
    return baseline


def _idle(sampler: Sampler, phase: str, seconds: float) -> None:
    sampler.mark(phase, "start")
    countdown(phase, seconds)
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
