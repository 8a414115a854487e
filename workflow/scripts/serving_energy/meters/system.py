"""System-wide CPU utilisation (all cores and per core) and RAM use, from psutil.

CPU % is computed from ``psutil.cpu_times`` deltas held by each meter instead of
``psutil.cpu_percent(interval=None)``: the latter keeps one process-wide "last call" state, so two
meters (or the server in the same process) calling it would shorten each other's intervals.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .base import GAUGE, METHOD_SAMPLED, Availability, Meter, Reading


def _busy_and_total(times: Any) -> tuple[float, float]:
    """Busy and total CPU seconds from one psutil ``scputimes`` record.

    On Linux guest time is already counted in user time, so it is removed from the total as
    psutil itself does; iowait is idle time from the CPU's point of view.
    """
    fields = times._asdict()
    total = sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
    idle = fields.get("idle", 0.0) + fields.get("iowait", 0.0)
    return total - idle, total


class CpuLoad:
    """Busy fraction of all CPUs and of each CPU since the previous ``update`` call."""

    def __init__(self, psutil_module: ModuleType) -> None:
        self._psutil = psutil_module
        self._last_all: tuple[float, float] | None = None
        self._last_cores: list[tuple[float, float]] | None = None

    def prime(self) -> None:
        self._last_all = _busy_and_total(self._psutil.cpu_times())
        self._last_cores = [_busy_and_total(t) for t in self._psutil.cpu_times(percpu=True)]

    def update(self) -> tuple[float, list[float]] | None:
        """Return (all-CPU %, per-CPU %) since the last call, or None before any interval."""
        now_all = _busy_and_total(self._psutil.cpu_times())
        now_cores = [_busy_and_total(t) for t in self._psutil.cpu_times(percpu=True)]
        last_all, last_cores = self._last_all, self._last_cores
        self._last_all, self._last_cores = now_all, now_cores
        if last_all is None or last_cores is None:
            return None
        cores = [_percent(a, b) for a, b in zip(last_cores, now_cores, strict=False)]
        return _percent(last_all, now_all), cores


def _percent(before: tuple[float, float], after: tuple[float, float]) -> float:
    busy = after[0] - before[0]
    total = after[1] - before[1]
    if total <= 0.0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * busy / total))


def _load_psutil(psutil_module: ModuleType | None) -> ModuleType | None:
    if psutil_module is not None:
        return psutil_module
    try:
        import psutil
    except ImportError:
        return None
    return psutil


class CpuLoadMeter(Meter):
    """A meter that follows the machine's CPU load through psutil (``system``, the estimate)."""

    def __init__(self, psutil_module: ModuleType | None, interval_s: float) -> None:
        self._psutil = _load_psutil(psutil_module)
        self.update_period_s = interval_s
        self._load: CpuLoad | None = None

    def start(self) -> None:
        assert self._psutil is not None
        self._load = CpuLoad(self._psutil)
        self._load.prime()

    def cpu_load(self) -> tuple[float, list[float]] | None:
        """(all-CPU %, per-CPU %) since the previous reading; None at the first."""
        assert self._load is not None
        return self._load.update()


class SystemMeter(CpuLoadMeter):
    """CPU % (all and per core) and RAM % of the whole machine."""

    name = "system"
    method = METHOD_SAMPLED
    measures = ("cpu_usage", "cpu_usage_core{i}", "ram_usage")

    def __init__(self, psutil_module: ModuleType | None = None, interval_s: float = 0.1) -> None:
        super().__init__(psutil_module, interval_s)

    def availability(self) -> Availability:
        if self._psutil is None:
            return Availability.no("psutil is not installed")
        try:
            self._psutil.cpu_times()
            self._psutil.virtual_memory()
        except Exception as exc:  # noqa: BLE001 - any failure means the OS will not tell us
            return Availability.no(f"psutil cannot read CPU times or memory: {exc}")
        return Availability.yes()

    def read(self, t_s: float) -> list[Reading]:
        assert self._psutil is not None
        readings: list[Reading] = []
        load = self.cpu_load()
        if load is not None:
            all_pct, cores = load
            readings.append(self._pct(t_s, "cpu_usage", all_pct, "psutil cpu_times all CPUs"))
            for i, pct in enumerate(cores):
                readings.append(
                    self._pct(t_s, f"cpu_usage_core{i}", pct, f"psutil cpu_times cpu{i}")
                )
        memory = self._psutil.virtual_memory()
        readings.append(self._pct(t_s, "ram_usage", float(memory.percent), "psutil virtual_memory"))
        return readings

    def _pct(self, t_s: float, quantity: str, value: float, sensor: str) -> Reading:
        return Reading(t_s, self.name, quantity, float(value), "%", GAUGE, METHOD_SAMPLED, sensor)
