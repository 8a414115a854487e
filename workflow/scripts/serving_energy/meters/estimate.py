"""A clearly labelled CPU power estimate for machines without an energy sensor.

P = TDP × (idle_fraction + (1 − idle_fraction) · load³), load being the busy fraction of all CPUs
since the previous reading. This is the "CPU load" model CodeCarbon falls back to when RAPL is
missing. It is a model, not a measurement: every reading carries method "estimate" and the
formula in its sensor text, and it only runs when the caller enables it.
"""

from __future__ import annotations

from types import ModuleType

from .base import GAUGE, METHOD_ESTIMATE, Availability, Reading
from .system import CpuLoadMeter


def estimated_cpu_power_w(load: float, tdp_w: float, idle_fraction: float) -> float:
    """Power in W for a busy fraction ``load`` in [0, 1]."""
    load = min(1.0, max(0.0, load))
    return tdp_w * (idle_fraction + (1.0 - idle_fraction) * load**3)


class CpuEstimateMeter(CpuLoadMeter):
    name = "cpu_estimate"
    method = METHOD_ESTIMATE
    measures = ("cpu_power",)

    def __init__(
        self,
        tdp_w: float,
        idle_fraction: float = 0.1,
        psutil_module: ModuleType | None = None,
        interval_s: float = 0.1,
    ) -> None:
        if tdp_w <= 0:
            raise ValueError(f"tdp_w must be positive, got {tdp_w}")
        if not 0.0 <= idle_fraction <= 1.0:
            raise ValueError(f"idle_fraction must be in [0, 1], got {idle_fraction}")
        super().__init__(psutil_module, interval_s)
        self.tdp_w = tdp_w
        self.idle_fraction = idle_fraction
        self.sensor = (
            f"ESTIMATE, not measured: TDP {tdp_w:g} W x ({idle_fraction:g} + "
            f"{1 - idle_fraction:g} x load^3) (CodeCarbon CPU-load model)"
        )

    def availability(self) -> Availability:
        if self._psutil is None:
            return Availability.no("psutil is not installed; the estimate needs CPU load")
        return Availability.yes()

    def read(self, t_s: float) -> list[Reading]:
        load = self.cpu_load()
        if load is None:
            return []
        power_w = estimated_cpu_power_w(load[0] / 100.0, self.tdp_w, self.idle_fraction)
        return [
            Reading(t_s, self.name, "cpu_power", power_w, "W", GAUGE, METHOD_ESTIMATE, self.sensor)
        ]
