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
from .energibridge import EnergiBridgeMeter, read_energibridge_csv
from .estimate import CpuEstimateMeter, estimated_cpu_power_w
from .factory import DEFAULTS, build_meters, resolve_settings
from .netio import NetioMeter, parse_netio_json
from .nvml import NvmlMeter
from .rapl import RaplMeter, discover_zones
from .sampler import Sampler
from .system import SystemMeter
from .timeline import PHASES, Marker, MeterError, Timeline
from .window import ComponentEnergy, WindowMetrics, unwrap_counter, window_metrics

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
