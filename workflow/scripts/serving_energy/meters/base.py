"""The meter interface and the records every meter produces.

A meter hides one piece of hardware (or one external tool) behind four calls: ``availability``,
``start``, ``read`` and ``stop``. Readings are plain records on the caller's monotonic clock, so the
sampler and the window maths never need to know which hardware produced them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

# Kinds: a counter is cumulative (difference two readings to get the amount in between);
# a gauge is an instantaneous or short-average value (integrate or average it).
COUNTER = "counter"
GAUGE = "gauge"

# Methods: how a value was obtained. Energy figures inherit the method of the readings they come
# from, so a reader of run.json can tell a measurement from an estimate.
METHOD_COUNTER = "counter"  # hardware energy counter (RAPL energy_uj, NVML total energy)
METHOD_SAMPLED_POWER = "sampled_power"  # power readings, integrated over time
METHOD_ESTIMATE = "estimate"  # modelled from load and a configured power, not measured
METHOD_EXTERNAL = "external_meter"  # wall-plug meter or an external tool (NETIO, EnergiBridge)
METHOD_SAMPLED = "sampled"  # utilisation and memory gauges from the OS or driver


@dataclass(frozen=True, slots=True)
class Reading:
    """One value from one sensor at one instant of the run's monotonic clock.

    ``range_max`` is the value at which a counter wraps back to zero (RAPL's max_energy_range_uj,
    converted to the reading's unit); None for gauges and for counters whose range is unknown.
    """

    t_s: float
    meter: str
    quantity: str
    value: float
    unit: str
    kind: str
    method: str
    sensor: str
    range_max: float | None = None


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a meter can measure on this machine, and if not, why (shown to the user)."""

    available: bool
    reason: str | None = None
    # True when the reason is that the hardware does not exist here (no GPU, no NVML library),
    # as opposed to hardware that exists but cannot be read. Window maths uses it to decide
    # whether "global = CPU" is honest (no GPU at all) or a missing measurement.
    hardware_absent: bool = False

    @classmethod
    def yes(cls) -> Availability:
        return cls(True, None)

    @classmethod
    def no(cls, reason: str, *, hardware_absent: bool = False) -> Availability:
        return cls(False, reason, hardware_absent)


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """What the timeline records about each configured meter, available or not."""

    name: str
    available: bool
    reason: str | None
    hardware_absent: bool
    method: str
    measures: tuple[str, ...]
    update_period_s: float


class Meter(ABC):
    """A source of readings.

    Subclasses set the class attributes below. ``read`` must be cheap for meters polled by the
    sampler thread; meters with slow I/O set ``own_thread = True`` and are polled on a thread of
    their own every ``poll_interval_s`` so they never delay the other meters.
    """

    name: str = "meter"
    method: str = METHOD_SAMPLED
    measures: tuple[str, ...] = ()
    # How often the underlying sensor refreshes; windows shorter than this are flagged.
    update_period_s: float = 0.0
    own_thread: bool = False
    poll_interval_s: float = 1.0

    @abstractmethod
    def availability(self) -> Availability:
        """Probe the hardware once; never raise for a missing or unreadable sensor."""

    def start(self) -> None:  # noqa: B027 (optional hook: most meters need no preparation)
        """Prepare to read (open handles, prime deltas)."""

    @abstractmethod
    def read(self, t_s: float) -> list[Reading]:
        """Return every quantity this meter measures, stamped with ``t_s``."""

    def read_counters(self, t_s: float) -> list[Reading]:
        """Return only cumulative counters; called at phase markers so windows start and end on
        a counter reading rather than on the nearest tick. Gauges are left out on purpose:
        reading psutil's CPU % at a marker would shorten the next tick's averaging interval."""
        return []

    def stop(self) -> None:  # noqa: B027 (optional hook: most meters hold nothing)
        """Release handles."""

    def finish(self) -> list[Reading]:
        """Readings that only exist after stop (an external tool's CSV); most meters have none."""
        return []

    def info(self, availability: Availability) -> MeterInfo:
        return MeterInfo(
            name=self.name,
            available=availability.available,
            reason=availability.reason,
            hardware_absent=availability.hardware_absent,
            method=self.method,
            measures=tuple(self.measures),
            update_period_s=float(self.update_period_s),
        )
