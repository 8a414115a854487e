"""Build the configured meters from plain values (the workflow passes its config section in).

Keys and defaults are listed in ``DEFAULTS`` and documented in docs/meters.md. Unknown keys are
an error so a typo in the config cannot silently switch a meter off.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from .base import Meter
from .energibridge import EnergiBridgeMeter
from .estimate import CpuEstimateMeter
from .netio import NetioMeter
from .nvml import NvmlMeter
from .rapl import RaplMeter
from .system import SystemMeter

DEFAULTS: dict[str, Any] = {
    "interval_s": 0.1,
    "system": {"enabled": True},
    "rapl": {"enabled": True, "root": "/sys/class/powercap"},
    "nvml": {"enabled": True, "gpu_index": 0},
    "netio": {
        "url": None,
        "outputs": [1],
        "timeout_s": 1.0,
        "poll_interval_s": 1.0,
        "username": None,
        "password": None,
    },
    "energibridge": {"binary": None, "interval_s": 0.2, "output_dir": None, "gpu": False},
    "cpu_estimate": {"enabled": False, "tdp_w": 65.0, "idle_fraction": 0.1},
}


def resolve_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """DEFAULTS overlaid with ``settings``; raises ValueError on an unknown key."""
    resolved = copy.deepcopy(DEFAULTS)
    for key, value in (settings or {}).items():
        if key not in DEFAULTS:
            raise ValueError(f"unknown meters setting {key!r}; known: {sorted(DEFAULTS)}")
        if isinstance(DEFAULTS[key], dict):
            if not isinstance(value, Mapping):
                raise TypeError(f"meters setting {key!r} must be a mapping, got {value!r}")
            unknown = set(value) - set(DEFAULTS[key])
            if unknown:
                raise ValueError(
                    f"unknown keys {sorted(unknown)} in meters setting {key!r}; "
                    f"known: {sorted(DEFAULTS[key])}"
                )
            resolved[key].update(value)
        else:
            resolved[key] = value
    return resolved


def build_meters(
    settings: Mapping[str, Any] | None = None,
    *,
    psutil_module: ModuleType | None = None,
    nvml_module: ModuleType | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[Meter]:
    """Meters in polling order. Meters that turn out unavailable are still returned: the
    sampler records them with their reason."""
    s = resolve_settings(settings)
    interval_s = float(s["interval_s"])
    meters: list[Meter] = []
    if s["system"]["enabled"]:
        meters.append(SystemMeter(psutil_module, interval_s=interval_s))
    if s["rapl"]["enabled"]:
        meters.append(RaplMeter(s["rapl"]["root"]))
    if s["nvml"]["enabled"]:
        meters.append(NvmlMeter(int(s["nvml"]["gpu_index"]), nvml=nvml_module))
    netio = s["netio"]
    if netio["url"]:
        meters.append(
            NetioMeter(
                netio["url"],
                outputs=netio["outputs"],
                timeout_s=float(netio["timeout_s"]),
                username=netio["username"],
                password=netio["password"],
                poll_interval_s=float(netio["poll_interval_s"]),
            )
        )
    eb = s["energibridge"]
    if eb["binary"]:
        meters.append(
            EnergiBridgeMeter(
                eb["binary"],
                interval_s=float(eb["interval_s"]),
                output_dir=eb["output_dir"],
                gpu=bool(eb["gpu"]),
                clock=clock,
            )
        )
    est = s["cpu_estimate"]
    if est["enabled"]:
        meters.append(
            CpuEstimateMeter(
                float(est["tdp_w"]),
                float(est["idle_fraction"]),
                psutil_module=psutil_module,
                interval_s=interval_s,
            )
        )
    return meters
