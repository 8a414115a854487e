"""What this machine looks like when it does nothing: its idle, measured once per host.

The first measurement job on a host (it owns the machine) cools down, then samples the same
meters as a run for a fixed time with nothing running. The result is kept per host under
``results/calibration/<hostname>.json``; every later run on that host compares its idle baseline
with it (``validity``), so a baseline taken while the machine was busy, or while a GPU was still in
a high power state after earlier work, is caught rather than subtracted.

A calibration taken while the CPU was not idle is not kept (the next run tries again).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from serving_energy.core.io import write_atomic_json
from serving_energy.meters import Sampler, build_meters, window_metrics
from serving_energy.meters.timeline import Timeline

logger = logging.getLogger("serving_energy.meters.calibration")


@dataclass(frozen=True)
class IdleCalibration:
    hostname: str
    measured_at: str
    duration_s: float
    cpu_usage_pct: float | None
    idle_power_w: dict[str, float | None]  # per component (cpu, gpu)
    method: dict[str, str | None]


def idle_power(timeline: Timeline, phase: str) -> tuple[dict, dict, float | None]:
    """Mean power per component over ``phase``, its methods, and the mean CPU usage."""
    metrics = window_metrics(timeline, phase=phase, baseline_phases=())
    duration = metrics.duration_s or 0.0
    power = {}
    methods = {}
    for component in ("cpu", "gpu"):
        energy = metrics.component(component).energy_j
        power[component] = energy / duration if energy is not None and duration > 0 else None
        methods[component] = metrics.component(component).method
    return power, methods, metrics.cpu_usage_pct


def measure_idle(
    meter_settings: Mapping[str, Any],
    duration_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> IdleCalibration:
    sampler = Sampler(build_meters(dict(meter_settings)), meter_settings.get("interval_s", 0.1))
    sampler.start()
    try:
        sampler.mark("idle-before", "start")
        sleep(duration_s)
        sampler.mark("idle-before", "end")
    finally:
        timeline = sampler.stop()
    power, methods, usage = idle_power(timeline, "idle-before")
    return IdleCalibration(
        hostname=socket.gethostname(),
        measured_at=datetime.now(UTC).isoformat(),
        duration_s=duration_s,
        cpu_usage_pct=usage,
        idle_power_w=power,
        method=methods,
    )


def load_or_calibrate(
    path: Path,
    measure: Callable[[], IdleCalibration],
    max_cpu_usage_pct: float,
) -> tuple[dict | None, str]:
    """This host's calibration (measured now if there is none yet) and how it was obtained."""
    path = Path(path)
    if path.is_file():
        return json.loads(path.read_text()), f"calibrated at {path}"
    logger.info("no idle calibration for this host yet: measuring one (%s)", path)
    calibration = measure()
    usage = calibration.cpu_usage_pct
    if usage is not None and usage > max_cpu_usage_pct:
        logger.warning(
            "idle calibration discarded: CPU %.1f %% busy (at most %.1f %%); the next run tries "
            "again",
            usage,
            max_cpu_usage_pct,
        )
        return None, f"calibration discarded: CPU {usage:.1f} % busy while idle"
    write_atomic_json(path, asdict(calibration))
    return asdict(calibration), f"calibrated now, kept at {path}"
