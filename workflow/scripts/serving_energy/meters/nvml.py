"""GPU energy, power, utilisation and memory from NVML (the ``pynvml`` module of nvidia-ml-py).

Energy comes from the total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules
since the driver loaded, Volta and newer) where the GPU has one; otherwise the window maths
integrates the power samples. Power is always recorded, as timeline and cross-check.

The module is injectable so tests can pass a fake NVML; a missing library or a missing GPU makes
the meter unavailable with the reason, never an exception.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .base import (
    COUNTER,
    GAUGE,
    METHOD_COUNTER,
    METHOD_SAMPLED,
    METHOD_SAMPLED_POWER,
    Availability,
    Meter,
    Reading,
)


def _load_pynvml(nvml: ModuleType | None) -> tuple[ModuleType | None, str | None]:
    if nvml is not None:
        return nvml, None
    try:
        import pynvml
    except ImportError as exc:
        return None, f"nvidia-ml-py (pynvml) is not installed: {exc}"
    return pynvml, None


def _is_nvml_error(nvml: ModuleType, exc: BaseException) -> bool:
    error_type = getattr(nvml, "NVMLError", None)
    return error_type is not None and isinstance(exc, error_type)


def _is_library_missing(nvml: ModuleType, exc: BaseException) -> bool:
    missing = getattr(nvml, "NVMLError_LibraryNotFound", None)
    return missing is not None and isinstance(exc, missing)


def _is_not_supported(nvml: ModuleType, exc: BaseException) -> bool:
    unsupported = getattr(nvml, "NVMLError_NotSupported", None)
    return unsupported is not None and isinstance(exc, unsupported)


class NvmlMeter(Meter):
    """One NVIDIA GPU, by index."""

    name = "nvml"
    method = METHOD_COUNTER
    measures = ("gpu_energy", "gpu_power", "gpu_usage", "gpu_mem_util", "gpu_mem_used")
    # NVML refreshes power and utilisation at most every ~20-100 ms depending on the GPU; the
    # utilisation rates are averages over the driver's sample period (1/6 s to 1 s).
    update_period_s = 0.1

    def __init__(self, gpu_index: int = 0, nvml: ModuleType | None = None) -> None:
        self.gpu_index = gpu_index
        self._nvml, self._import_error = _load_pynvml(nvml)
        self._handle: Any = None
        self._initialised = False
        self.has_energy_counter = False
        self.device_name = f"gpu{gpu_index}"

    def availability(self) -> Availability:
        if self._nvml is None:
            return Availability.no(self._import_error or "pynvml missing", hardware_absent=True)
        nvml = self._nvml
        try:
            if not self._initialised:
                nvml.nvmlInit()
                self._initialised = True
            count = nvml.nvmlDeviceGetCount()
        except Exception as exc:  # classified below; only non-NVML errors propagate
            if _is_library_missing(nvml, exc):
                return Availability.no(
                    f"NVML library not found ({exc}): no NVIDIA driver on this machine",
                    hardware_absent=True,
                )
            if _is_nvml_error(nvml, exc):
                return Availability.no(f"NVML failed to initialise: {exc}")
            raise
        if count == 0:
            self._shutdown()
            return Availability.no("NVML reports no GPU", hardware_absent=True)
        if self.gpu_index >= count:
            self._shutdown()
            return Availability.no(
                f"GPU index {self.gpu_index} requested but NVML reports {count} GPU(s)"
            )
        try:
            self._handle = nvml.nvmlDeviceGetHandleByIndex(self.gpu_index)
            name = nvml.nvmlDeviceGetName(self._handle)
            self.device_name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception as exc:
            if not _is_nvml_error(nvml, exc):
                raise
            self._shutdown()
            return Availability.no(f"cannot open GPU {self.gpu_index}: {exc}")
        self.has_energy_counter = self._probe_energy_counter()
        self.method = METHOD_COUNTER if self.has_energy_counter else METHOD_SAMPLED_POWER
        return Availability.yes()

    def _probe_energy_counter(self) -> bool:
        assert self._nvml is not None
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except Exception as exc:
            if _is_not_supported(self._nvml, exc) or _is_nvml_error(self._nvml, exc):
                return False
            raise
        return True

    def _sensor(self, what: str) -> str:
        return f"nvml gpu{self.gpu_index} {self.device_name} {what}"

    def read_counters(self, t_s: float) -> list[Reading]:
        if not self.has_energy_counter:
            return []
        assert self._nvml is not None
        energy_mj = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        return [
            Reading(
                t_s,
                self.name,
                "gpu_energy",
                energy_mj / 1000.0,
                "J",
                COUNTER,
                METHOD_COUNTER,
                self._sensor("nvmlDeviceGetTotalEnergyConsumption"),
            )
        ]

    def read(self, t_s: float) -> list[Reading]:
        assert self._nvml is not None
        nvml, handle = self._nvml, self._handle
        readings = self.read_counters(t_s)
        power_w = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
        rates = nvml.nvmlDeviceGetUtilizationRates(handle)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        used_pct = 100.0 * memory.used / memory.total if memory.total else 0.0
        readings += [
            Reading(
                t_s,
                self.name,
                "gpu_power",
                power_w,
                "W",
                GAUGE,
                METHOD_SAMPLED_POWER,
                self._sensor("nvmlDeviceGetPowerUsage"),
            ),
            Reading(
                t_s,
                self.name,
                "gpu_usage",
                float(rates.gpu),
                "%",
                GAUGE,
                METHOD_SAMPLED,
                self._sensor("utilization.gpu"),
            ),
            Reading(
                t_s,
                self.name,
                "gpu_mem_util",
                float(rates.memory),
                "%",
                GAUGE,
                METHOD_SAMPLED,
                self._sensor("utilization.memory"),
            ),
            Reading(
                t_s,
                self.name,
                "gpu_mem_used",
                used_pct,
                "%",
                GAUGE,
                METHOD_SAMPLED,
                self._sensor("memory used/total"),
            ),
        ]
        return readings

    def stop(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        if self._initialised and self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001, S110 - shutting down a broken NVML is harmless
                pass
            self._initialised = False
