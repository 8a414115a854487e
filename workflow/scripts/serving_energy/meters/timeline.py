"""Everything one sampling session saw, on one monotonic clock, and its single-file parquet form.

``timeline.parquet`` is long format, one row per record, told apart by ``row_type``:

- ``sample``: one meter reading (t_s, meter, quantity, value, unit, kind, method, sensor,
  range_max);
- ``marker``: a phase edge (t_s, phase, event "start"/"end");
- ``meter``: one configured meter (meter, available, reason, hardware_absent, method, measures,
  update_period_s), so an unavailable meter is recorded with its reason instead of vanishing;
- ``error``: a failed read (t_s, meter, reason), e.g. a NETIO poll that timed out;
- ``meta``: session settings as (quantity = key, value), e.g. interval_s and epoch_offset_s.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from serving_energy.core.io import atomic_path

from .base import Availability, MeterInfo, Reading

# In the order a run goes through them. "stop" covers shutting the server down between inference
# and idle-after; "calibration" is the host's idle calibration, on the first run of a host only.
PHASES = (
    "cooldown", "calibration", "idle-before", "load", "warm-up", "inference", "stop", "idle-after",
)  # fmt: skip
EVENTS = ("start", "end")

SCHEMA: dict[str, pl.DataType] = {
    "row_type": pl.String(),
    "t_s": pl.Float64(),
    "meter": pl.String(),
    "quantity": pl.String(),
    "value": pl.Float64(),
    "unit": pl.String(),
    "kind": pl.String(),
    "method": pl.String(),
    "sensor": pl.String(),
    "range_max": pl.Float64(),
    "phase": pl.String(),
    "event": pl.String(),
    "available": pl.Boolean(),
    "reason": pl.String(),
    "hardware_absent": pl.Boolean(),
    "measures": pl.String(),
    "update_period_s": pl.Float64(),
}
# The columns a sample row fills (the fields of a Reading).
SAMPLE_COLUMNS = (
    "t_s", "meter", "quantity", "value", "unit", "kind", "method", "sensor", "range_max",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Marker:
    t_s: float
    phase: str
    event: str


@dataclass(frozen=True, slots=True)
class MeterError:
    t_s: float
    meter: str
    message: str


@dataclass(frozen=True)
class Timeline:
    samples: tuple[Reading, ...]
    markers: tuple[Marker, ...] = ()
    meters: tuple[MeterInfo, ...] = ()
    errors: tuple[MeterError, ...] = ()
    interval_s: float = 0.1
    # time.time() - clock() measured once at start: add it to t_s to get Unix time.
    epoch_offset_s: float = 0.0
    extra_meta: dict[str, float] = field(default_factory=dict)

    # -- queries ------------------------------------------------------------------------------
    @property
    def availability(self) -> dict[str, Availability]:
        return {m.name: Availability(m.available, m.reason, m.hardware_absent) for m in self.meters}

    def meter_info(self, name: str) -> MeterInfo | None:
        return next((m for m in self.meters if m.name == name), None)

    def phase_bounds(self, phase: str) -> tuple[float, float] | None:
        """(start, end) of the first complete occurrence of ``phase``, or None."""
        start = None
        for marker in sorted(self.markers, key=lambda m: m.t_s):
            if marker.phase != phase:
                continue
            if marker.event == "start" and start is None:
                start = marker.t_s
            elif marker.event == "end" and start is not None:
                return start, marker.t_s
        return None

    def select(self, quantity: str | None = None, meter: str | None = None) -> list[Reading]:
        return [
            r
            for r in self.samples
            if (quantity is None or r.quantity == quantity) and (meter is None or r.meter == meter)
        ]

    # -- parquet ------------------------------------------------------------------------------
    def to_frame(self) -> pl.DataFrame:
        rows: list[dict[str, object]] = []
        for key, value in {
            "interval_s": self.interval_s,
            "epoch_offset_s": self.epoch_offset_s,
            **self.extra_meta,
        }.items():
            rows.append({"row_type": "meta", "quantity": key, "value": float(value)})
        for m in self.meters:
            rows.append(
                {
                    "row_type": "meter",
                    "meter": m.name,
                    "available": m.available,
                    "reason": m.reason,
                    "hardware_absent": m.hardware_absent,
                    "method": m.method,
                    "measures": ",".join(m.measures),
                    "update_period_s": m.update_period_s,
                }
            )
        for mk in self.markers:
            rows.append({"row_type": "marker", "t_s": mk.t_s, "phase": mk.phase, "event": mk.event})
        for e in self.errors:
            rows.append({"row_type": "error", "t_s": e.t_s, "meter": e.meter, "reason": e.message})
        head = pl.DataFrame(rows, schema=SCHEMA) if rows else pl.DataFrame(schema=SCHEMA)
        samples = pl.DataFrame(
            {
                "row_type": ["sample"] * len(self.samples),
                "t_s": [r.t_s for r in self.samples],
                "meter": [r.meter for r in self.samples],
                "quantity": [r.quantity for r in self.samples],
                "value": [r.value for r in self.samples],
                "unit": [r.unit for r in self.samples],
                "kind": [r.kind for r in self.samples],
                "method": [r.method for r in self.samples],
                "sensor": [r.sensor for r in self.samples],
                "range_max": [r.range_max for r in self.samples],
            },
            schema={k: SCHEMA[k] for k in ("row_type", *SAMPLE_COLUMNS)},
        )
        return pl.concat([head, samples], how="diagonal").select(list(SCHEMA))

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically: a crash never leaves a complete-looking timeline behind."""
        path = Path(path)
        with atomic_path(path) as temporary:
            self.to_frame().write_parquet(temporary)
        return path

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> Timeline:
        meta: dict[str, float] = {}
        meters: list[MeterInfo] = []
        markers: list[Marker] = []
        errors: list[MeterError] = []
        for row in frame.filter(pl.col("row_type") != "sample").iter_rows(named=True):
            kind = row["row_type"]
            if kind == "meta":
                meta[row["quantity"]] = row["value"]
            elif kind == "meter":
                meters.append(
                    MeterInfo(
                        name=row["meter"],
                        available=bool(row["available"]),
                        reason=row["reason"],
                        hardware_absent=bool(row["hardware_absent"]),
                        method=row["method"],
                        measures=tuple(x for x in (row["measures"] or "").split(",") if x),
                        update_period_s=row["update_period_s"] or 0.0,
                    )
                )
            elif kind == "marker":
                markers.append(Marker(row["t_s"], row["phase"], row["event"]))
            elif kind == "error":
                errors.append(MeterError(row["t_s"], row["meter"], row["reason"]))
        samples = frame.filter(pl.col("row_type") == "sample").select(SAMPLE_COLUMNS)
        readings = tuple(Reading(*row) for row in samples.iter_rows())
        interval_s = meta.pop("interval_s", 0.1)
        epoch_offset_s = meta.pop("epoch_offset_s", 0.0)
        return cls(
            readings, tuple(markers), tuple(meters), tuple(errors), interval_s, epoch_offset_s, meta
        )

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str]) -> Timeline:
        return cls.from_frame(pl.read_parquet(path))


def merge_samples(*groups: Iterable[Reading]) -> tuple[Reading, ...]:
    """All readings of several sources in clock order (stable for equal times)."""
    merged = [r for group in groups for r in group]
    merged.sort(key=lambda r: r.t_s)
    return tuple(merged)
