"""The CPU estimate is a model, labelled as such everywhere it appears."""

import pytest

from serving_energy.meters import (
    CpuEstimateMeter,
    Marker,
    Timeline,
    estimated_cpu_power_w,
    window_metrics,
)

from .fakes import FakePsutil


def test_formula_matches_codecarbon_load_model() -> None:
    # 65 W x (0.1 + 0.9 x 0.5^3) = 65 x 0.2125
    assert estimated_cpu_power_w(0.5, 65.0, 0.1) == pytest.approx(13.8125)
    assert estimated_cpu_power_w(0.0, 65.0, 0.1) == pytest.approx(6.5)
    assert estimated_cpu_power_w(1.0, 65.0, 0.1) == pytest.approx(65.0)
    assert estimated_cpu_power_w(1.7, 65.0, 0.1) == pytest.approx(65.0)  # clamped


def test_readings_and_window_are_labelled_estimate() -> None:
    fake = FakePsutil()
    meter = CpuEstimateMeter(65.0, 0.1, psutil_module=fake)
    assert meter.availability().available
    meter.start()
    samples = []
    for t in range(3):
        fake.advance(busy_s=0.5, idle_s=0.5)  # 50 % load on both CPUs
        samples += meter.read(float(t))
    assert all(r.method == "estimate" and "ESTIMATE" in r.sensor for r in samples)
    assert samples[0].value == pytest.approx(13.8125)
    timeline = Timeline(
        tuple(samples),
        (Marker(0.0, "inference", "start"), Marker(2.0, "inference", "end")),
        (meter.info(meter.availability()),),
    )
    metrics = window_metrics(timeline)
    assert metrics.cpu.energy_j == pytest.approx(2 * 13.8125)
    assert metrics.cpu.method == "estimate"
    assert "ESTIMATE, not measured" in metrics.cpu.sensor


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="tdp_w"):
        CpuEstimateMeter(0.0)
    with pytest.raises(ValueError, match="idle_fraction"):
        CpuEstimateMeter(65.0, 1.5)
