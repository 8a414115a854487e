"""Energy and resource meters on one monotonic clock, and metrics over phase windows.

Typical use by the protocol code::

    meters = build_meters(settings)          # plain values from the workflow config
    sampler = Sampler(meters, interval_s=settings.get("interval_s", 0.1))
    sampler.start()
    sampler.mark("idle-before", "start"); ...; sampler.mark("idle-before", "end")
    ...
    timeline = sampler.stop()
    timeline.to_parquet(run_dir / "timeline.parquet")
    metrics = window_metrics(timeline, "inference", n_requests=164, new_tokens=n)

See docs/meters.md for what each meter measures and how windows are computed.
"""

from importlib import import_module

from .base import (
    COUNTER,
    GAUGE,
    METHOD_COUNTER,
    METHOD_ESTIMATE,
    METHOD_EXTERNAL,
    METHOD_SAMPLED,
    METHOD_SAMPLED_POWER,
    Availability,
    Meter,
    MeterInfo,
    Reading,
)
from .timeline import PHASES, Marker, MeterError, Timeline
from .window import ComponentEnergy, WindowMetrics, unwrap_counter, window_metrics

# The hardware meters, the sampler and the factory need their drivers (psutil, pynvml, requests);
# they are imported on first use, so reading a timeline or judging a window (the analysis) needs
# none of them.
_LAZY = {
    "EnergiBridgeMeter": "energibridge",
    "read_energibridge_csv": "energibridge",
    "CpuEstimateMeter": "estimate",
    "estimated_cpu_power_w": "estimate",
    "DEFAULTS": "factory",
    "build_meters": "factory",
    "resolve_settings": "factory",
    "NetioMeter": "netio",
    "parse_netio_json": "netio",
    "NvmlMeter": "nvml",
    "RaplMeter": "rapl",
    "discover_zones": "rapl",
    "Sampler": "sampler",
    "SystemMeter": "system",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COUNTER",
    "DEFAULTS",
    "GAUGE",
    "METHOD_COUNTER",
    "METHOD_ESTIMATE",
    "METHOD_EXTERNAL",
    "METHOD_SAMPLED",
    "METHOD_SAMPLED_POWER",
    "PHASES",
    "Availability",
    "ComponentEnergy",
    "CpuEstimateMeter",
    "EnergiBridgeMeter",
    "Marker",
    "Meter",
    "MeterError",
    "MeterInfo",
    "NetioMeter",
    "NvmlMeter",
    "RaplMeter",
    "Reading",
    "Sampler",
    "SystemMeter",
    "Timeline",
    "WindowMetrics",
    "build_meters",
    "discover_zones",
    "estimated_cpu_power_w",
    "parse_netio_json",
    "read_energibridge_csv",
    "resolve_settings",
    "unwrap_counter",
    "window_metrics",
]
