"""Poll every meter onto one monotonic clock in the background, with phase markers.

One daemon thread polls the cheap meters (psutil, RAPL, NVML, the estimate) every ``interval_s``
on a fixed grid; it sleeps in ``threading.Event.wait`` so it never spins a core. Meters with slow
I/O (``own_thread = True``, e.g. NETIO over HTTP) each get their own thread, bounded by their own
timeout, and their readings are stamped at the midpoint of the request on the same clock.

``mark(phase, event)`` stamps a phase edge and reads every counter at that instant, so windows
start and end on a counter reading instead of the nearest tick.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from .base import Availability, Meter, MeterInfo, Reading
from .timeline import EVENTS, PHASES, Marker, MeterError, Timeline, merge_samples

# A meter that fails on every tick would flood the timeline; keep the first errors and a count.
MAX_ERRORS_PER_METER = 50


class Sampler:
    def __init__(
        self,
        meters: Sequence[Meter],
        interval_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.meters = list(meters)
        self.interval_s = interval_s
        self.clock = clock
        self._active: list[Meter] = []
        self._infos: list[MeterInfo] = []
        self._samples: list[Reading] = []
        self._markers: list[Marker] = []
        self._errors: list[MeterError] = []
        self._error_counts: dict[str, int] = {}
        self._lock = threading.Lock()  # guards the main-thread meters and the record lists
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._epoch_offset_s = 0.0
        # CPU seconds the sampler's own threads used; filled in by each thread when it ends.
        self.thread_cpu_s: dict[str, float] = {}
        self.ticks = 0

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            raise RuntimeError("Sampler already started")
        self._started = True
        self._epoch_offset_s = time.time() - self.clock()
        for meter in self.meters:
            availability = self._probe(meter)
            self._infos.append(meter.info(availability))
            if availability.available:
                self._active.append(meter)
        t0 = self.clock()
        with self._lock:
            for meter in self._local_meters():
                self._read_into(meter, meter.read, t0)
        main = threading.Thread(target=self._run_local, name="meters-sampler", daemon=True)
        self._threads.append(main)
        for meter in self._active:
            if meter.own_thread:
                thread = threading.Thread(
                    target=self._run_external,
                    args=(meter,),
                    name=f"meters-{meter.name}",
                    daemon=True,
                )
                self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def _probe(self, meter: Meter) -> Availability:
        try:
            availability = meter.availability()
        except Exception as exc:  # noqa: BLE001 - a broken meter must not stop the run
            return Availability.no(f"availability check raised {type(exc).__name__}: {exc}")
        if not availability.available:
            return availability
        try:
            meter.start()
        except Exception as exc:  # noqa: BLE001
            return Availability.no(f"start raised {type(exc).__name__}: {exc}")
        return availability

    def mark(self, phase: str, event: str) -> float:
        """Stamp a phase edge, read every counter at that instant, and return the time."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; expected one of {PHASES}")
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; expected one of {EVENTS}")
        with self._lock:
            t_s = self.clock()
            self._markers.append(Marker(t_s, phase, event))
            for meter in self._active:
                if not meter.own_thread:
                    self._read_into(meter, meter.read_counters, t_s)
        return t_s

    def stop(self) -> Timeline:
        """Stop all threads, read counters a last time and return the timeline."""
        if not self._started:
            raise RuntimeError("Sampler was never started")
        self._stop.set()
        # External threads may be inside an HTTP call; their own timeout bounds the wait.
        timeout = max([5.0] + [2.0 * getattr(m, "timeout_s", 0.0) for m in self._active])
        for thread in self._threads:
            thread.join(timeout=timeout)
        t_end = self.clock()
        with self._lock:
            for meter in self._local_meters():
                self._read_into(meter, meter.read_counters, t_end)
        deferred: list[Reading] = []
        for meter in self._active:
            try:
                meter.stop()
                deferred.extend(meter.finish())
            except Exception as exc:  # noqa: BLE001
                self._record_error(
                    meter.name, t_end, f"stop or finish raised {type(exc).__name__}: {exc}"
                )
        for name, count in self._error_counts.items():
            if count > MAX_ERRORS_PER_METER:
                self._errors.append(
                    MeterError(t_end, name, f"{count - MAX_ERRORS_PER_METER} more errors not kept")
                )
        return Timeline(
            samples=merge_samples(self._samples, deferred),
            markers=tuple(sorted(self._markers, key=lambda m: m.t_s)),
            meters=tuple(self._infos),
            errors=tuple(sorted(self._errors, key=lambda e: e.t_s)),
            interval_s=self.interval_s,
            epoch_offset_s=self._epoch_offset_s,
        )

    # -- threads ------------------------------------------------------------------------------
    def _local_meters(self) -> list[Meter]:
        return [m for m in self._active if not m.own_thread]

    def _run_local(self) -> None:
        cpu0 = time.thread_time()
        meters = self._local_meters()
        next_tick = self.clock() + self.interval_s
        while not self._stop.wait(max(0.0, next_tick - self.clock())):
            t_s = self.clock()
            with self._lock:
                for meter in meters:
                    self._read_into(meter, meter.read, t_s)
            self.ticks += 1
            next_tick += self.interval_s
            if next_tick <= t_s:  # fell behind (machine overloaded): skip, do not burst
                missed = int((t_s - next_tick) // self.interval_s) + 1
                next_tick += missed * self.interval_s
        self.thread_cpu_s["sampler"] = time.thread_time() - cpu0

    def _run_external(self, meter: Meter) -> None:
        cpu0 = time.thread_time()
        while not self._stop.is_set():
            t_before = self.clock()
            try:
                readings = meter.read(t_before)
            except Exception as exc:  # noqa: BLE001 - timeouts and HTTP errors are data too
                self._record_error(meter.name, t_before, f"{type(exc).__name__}: {exc}")
                readings = []
            t_mid = (t_before + self.clock()) / 2.0
            with self._lock:
                self._samples.extend(Reading(t_mid, *_fields_after_t(r)) for r in readings)
            elapsed = self.clock() - t_before
            if self._stop.wait(max(0.0, meter.poll_interval_s - elapsed)):
                break
        self.thread_cpu_s[meter.name] = time.thread_time() - cpu0

    # -- helpers (callers hold the lock where noted) --------------------------------------------
    def _read_into(self, meter: Meter, read: Callable[[float], list[Reading]], t_s: float) -> None:
        try:
            self._samples.extend(read(t_s))
        except Exception as exc:  # noqa: BLE001
            self._record_error_locked(meter.name, t_s, f"{type(exc).__name__}: {exc}")

    def _record_error(self, meter: str, t_s: float, message: str) -> None:
        with self._lock:
            self._record_error_locked(meter, t_s, message)

    def _record_error_locked(self, meter: str, t_s: float, message: str) -> None:
        count = self._error_counts.get(meter, 0) + 1
        self._error_counts[meter] = count
        if count <= MAX_ERRORS_PER_METER:
            self._errors.append(MeterError(t_s, meter, message))


def _fields_after_t(reading: Reading) -> tuple:
    return (
        reading.meter,
        reading.quantity,
        reading.value,
        reading.unit,
        reading.kind,
        reading.method,
        reading.sensor,
        reading.range_max,
    )
