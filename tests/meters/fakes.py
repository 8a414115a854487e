"""Fakes shared by the meter tests: an NVML module and a psutil module with scripted values."""

from __future__ import annotations

from collections import namedtuple
from types import SimpleNamespace

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait irq softirq steal guest guest_nice")


class FakePsutil:
    """psutil with scripted CPU times: each ``advance(busy_s, idle_s)`` adds to every CPU."""

    def __init__(self, n_cpus: int = 2, ram_percent: float = 42.0) -> None:
        self.cores = [[0.0, 0.0] for _ in range(n_cpus)]  # busy, idle seconds
        self.ram_percent = ram_percent

    def advance(self, busy_s: float, idle_s: float, core: int | None = None) -> None:
        for i, c in enumerate(self.cores):
            if core is None or core == i:
                c[0] += busy_s
                c[1] += idle_s

    @staticmethod
    def _times(busy: float, idle: float) -> CpuTimes:
        return CpuTimes(busy, 0.0, 0.0, idle, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def cpu_times(self, percpu: bool = False):
        per = [self._times(b, i) for b, i in self.cores]
        if percpu:
            return per
        return self._times(sum(b for b, _ in self.cores), sum(i for _, i in self.cores))

    def virtual_memory(self):
        return SimpleNamespace(percent=self.ram_percent)


class NVMLError(Exception):
    pass


class NVMLError_LibraryNotFound(NVMLError):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


class FakeNvml:
    """The parts of pynvml the meter uses; values in NVML's units (mW, mJ, bytes)."""

    NVMLError = NVMLError
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVMLError_NotSupported = NVMLError_NotSupported

    def __init__(
        self, *, count: int = 1, energy_counter: bool = True, library: bool = True
    ) -> None:
        self.count = count
        self.energy_counter = energy_counter
        self.library = library
        self.energy_mj = 1_000_000
        self.power_mw = 75_000
        self.util = SimpleNamespace(gpu=80, memory=30)
        self.memory = SimpleNamespace(used=4 * 2**30, total=16 * 2**30)
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if not self.library:
            raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"handle{index}"

    def nvmlDeviceGetName(self, handle: str) -> bytes:
        return b"Fake A100"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:
        if not self.energy_counter:
            raise NVMLError_NotSupported("Not Supported")
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        return self.power_mw

    def nvmlDeviceGetUtilizationRates(self, handle: str):
        return self.util

    def nvmlDeviceGetMemoryInfo(self, handle: str):
        return self.memory
