"""The sampler: one clock, counters at markers, failures recorded; a real session; parquet."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from serving_energy.meters import (
    Availability,
    Meter,
    Reading,
    Sampler,
    SystemMeter,
    Timeline,
    build_meters,
    resolve_settings,
    window_metrics,
)

from .fakes import FakeNvml, FakePsutil


class CountingMeter(Meter):
    """A counter that advances 1 J per read, and a gauge read only at ticks."""

    name = "fake"
    measures = ("cpu_energy",)

    def __init__(self) -> None:
        self.energy = 0.0
        self.stopped = False

    def availability(self) -> Availability:
        return Availability.yes()

    def read_counters(self, t_s: float) -> list[Reading]:
        self.energy += 1.0
        return [Reading(t_s, self.name, "cpu_energy", self.energy, "J", "counter", "counter", "f")]

    def read(self, t_s: float) -> list[Reading]:
        gauge = Reading(t_s, self.name, "gauge", 1.0, "W", "gauge", "sampled", "f")
        return [*self.read_counters(t_s), gauge]

    def stop(self) -> None:
        self.stopped = True


class BrokenMeter(Meter):
    name = "broken"

    def availability(self) -> Availability:
        return Availability.yes()

    def read(self, t_s: float) -> list[Reading]:
        raise OSError("sensor fell off")


class ExplodingProbe(Meter):
    name = "exploding"

    def availability(self) -> Availability:
        raise RuntimeError("driver panic")

    def read(self, t_s: float) -> list[Reading]:  # pragma: no cover - never started
        raise AssertionError


def test_markers_read_counters_at_the_same_instant() -> None:
    meter = CountingMeter()
    sampler = Sampler([meter, BrokenMeter(), ExplodingProbe()], interval_s=0.05)
    sampler.start()
    t_start = sampler.mark("inference", "start")
    time.sleep(0.3)
    t_end = sampler.mark("inference", "end")
    timeline = sampler.stop()
    assert meter.stopped
    counter_times = {r.t_s for r in timeline.select("cpu_energy")}
    gauge_times = {r.t_s for r in timeline.select("gauge")}
    assert t_start in counter_times and t_end in counter_times
    assert t_start not in gauge_times  # gauges are not read at markers
    assert 3 <= sampler.ticks <= 8
    assert [m.t_s for m in timeline.markers] == [t_start, t_end]
    assert timeline.availability["exploding"].reason == (
        "availability check raised RuntimeError: driver panic"
    )
    assert timeline.errors and all("sensor fell off" in e.message for e in timeline.errors)
    times = [r.t_s for r in timeline.samples]
    assert times == sorted(times)
    assert sampler.thread_cpu_s["sampler"] >= 0.0


def test_rejects_unknown_phases_and_events() -> None:
    sampler = Sampler([CountingMeter()], interval_s=0.05)
    sampler.start()
    with pytest.raises(ValueError, match="phase"):
        sampler.mark("warmup", "start")
    with pytest.raises(ValueError, match="event"):
        sampler.mark("load", "begin")
    for phase in ("idle-before", "load", "warm-up", "inference", "stop", "idle-after", "cooldown"):
        sampler.mark(phase, "start")  # every phase the protocol uses is accepted
    sampler.stop()


def test_fake_hardware_session_through_the_factory() -> None:
    psutil = FakePsutil()
    nvml = FakeNvml()
    meters = build_meters(
        {
            "interval_s": 0.05,
            "rapl": {"root": "/nonexistent"},
            "cpu_estimate": {"enabled": True, "tdp_w": 100.0},
        },
        psutil_module=psutil,
        nvml_module=nvml,
    )
    assert [m.name for m in meters] == ["system", "rapl", "nvml", "cpu_estimate"]
    sampler = Sampler(meters, interval_s=0.05)
    sampler.start()
    sampler.mark("inference", "start")
    for _ in range(5):
        psutil.advance(busy_s=0.05, idle_s=0.0)  # fully busy
        nvml.energy_mj += 10_000
        time.sleep(0.05)
    sampler.mark("inference", "end")
    timeline = sampler.stop()
    m = window_metrics(timeline)
    assert m.gpu.method == "counter"
    assert m.gpu.energy_j == pytest.approx(50.0)  # 5 x 10 J between the two markers
    assert m.cpu.method == "estimate"
    assert m.global_.method == "cpu estimate + gpu counter"
    assert not timeline.availability["rapl"].available


def test_settings_reject_typos() -> None:
    with pytest.raises(ValueError, match="rapl_root"):
        resolve_settings({"rapl_root": "/x"})
    with pytest.raises(ValueError, match="tdp"):
        resolve_settings({"cpu_estimate": {"tdp": 10}})
    assert resolve_settings(None)["netio"]["url"] is None


def test_real_session_on_this_machine(tmp_path: Path) -> None:
    """A few seconds of real sampling: CPU %, RAM %, a labelled estimate, reasons for the rest."""
    meters = build_meters({"interval_s": 0.1, "cpu_estimate": {"enabled": True}})
    sampler = Sampler(meters, interval_s=0.1)
    sampler.start()
    sampler.mark("idle-before", "start")
    time.sleep(0.5)
    sampler.mark("idle-before", "end")
    sampler.mark("inference", "start")
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # real work for the meters to see
        sum(i * i for i in range(10_000))
    sampler.mark("inference", "end")
    sampler.mark("idle-after", "start")
    time.sleep(0.5)
    sampler.mark("idle-after", "end")
    timeline = sampler.stop()

    availability = timeline.availability
    assert availability["system"].available and availability["cpu_estimate"].available
    if not Path("/sys/class/powercap").exists():
        assert not availability["rapl"].available and "powercap" in availability["rapl"].reason
    if not availability["nvml"].available:
        assert availability["nvml"].reason

    m = window_metrics(timeline, n_requests=3, new_tokens=30)
    assert m.cpu_usage_pct is not None and 0.0 < m.cpu_usage_pct <= 100.0
    assert m.ram_usage_pct is not None and 0.0 < m.ram_usage_pct < 100.0
    assert len(timeline.select("cpu_usage_core0")) >= 10
    if not availability["rapl"].available:
        assert m.cpu.method == "estimate"
        assert 6.5 * m.duration_s <= m.cpu.energy_j <= 65.0 * m.duration_s
    if not availability["nvml"].available and availability["nvml"].hardware_absent:
        assert m.global_.method.endswith("no GPU present")
        assert m.energy_per("token") == pytest.approx(m.global_.energy_j / 30)
    json.dumps(m.to_dict())

    path = timeline.to_parquet(tmp_path / "run" / "timeline.parquet")
    assert Timeline.from_parquet(path) == timeline
    assert not list(path.parent.glob(".*tmp*"))


def test_parquet_round_trip_keeps_every_row_type(tmp_path: Path) -> None:
    from serving_energy.meters import Marker, MeterError
    from serving_energy.meters.base import MeterInfo

    timeline = Timeline(
        samples=(
            Reading(1.0, "rapl", "cpu_energy", 12.5, "J", "counter", "counter", "z", 262143.3),
            Reading(1.5, "system", "cpu_usage", 40.0, "%", "gauge", "sampled", "psutil"),
        ),
        markers=(Marker(0.5, "inference", "start"), Marker(2.0, "inference", "end")),
        meters=(MeterInfo("nvml", False, "no GPU", True, "counter", ("gpu_energy",), 0.1),),
        errors=(MeterError(1.2, "netio", "ReadTimeout: timed out"),),
        interval_s=0.05,
        epoch_offset_s=1.7e9,
    )
    path = timeline.to_parquet(tmp_path / "timeline.parquet")
    assert Timeline.from_parquet(path) == timeline
    import polars as pl

    frame = pl.read_parquet(path)
    assert set(frame["row_type"]) == {"meta", "meter", "marker", "error", "sample"}


def test_system_meter_percentages_from_cpu_times() -> None:
    fake = FakePsutil(n_cpus=2, ram_percent=37.5)
    meter = SystemMeter(fake)
    meter.start()
    fake.advance(busy_s=0.3, idle_s=0.7, core=0)
    fake.advance(busy_s=0.9, idle_s=0.1, core=1)
    values = {r.quantity: r.value for r in meter.read(1.0)}
    assert values == pytest.approx(
        {"cpu_usage": 60.0, "cpu_usage_core0": 30.0, "cpu_usage_core1": 90.0, "ram_usage": 37.5}
    )
