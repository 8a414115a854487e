"""EnergiBridge: importing its CSV onto the monotonic clock, and running it beside a session."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from serving_energy.meters import (
    EnergiBridgeMeter,
    Marker,
    Sampler,
    Timeline,
    read_energibridge_csv,
    window_metrics,
)
from serving_energy.meters.base import MeterInfo

DATA = Path(__file__).parent / "data"
# Time column starts at 1_700_000_000_000 ms; with this offset the first row is at t_s = 1000.0
OFFSET_S = 1_699_999_000.0


def test_import_maps_columns_and_clock() -> None:
    readings = read_energibridge_csv(DATA / "energibridge_amd_2cores.csv", OFFSET_S)
    cpu = [r for r in readings if r.quantity == "cpu_energy"]
    assert [r.t_s for r in cpu] == pytest.approx([1000.0, 1000.2, 1000.4, 1000.6, 1000.8])
    assert [r.value for r in cpu] == [65000.0, 65004.0, 65010.0, 65016.0, 65020.0]
    assert cpu[0].kind == "counter" and cpu[0].sensor == "energibridge CPU_ENERGY (J)"
    by_q = {}
    for r in readings:
        by_q.setdefault(r.quantity, []).append(r.value)
    assert by_q["cpu_usage"][:2] == pytest.approx([15.0, 45.0])  # mean of the two cores
    assert by_q["cpu_usage_core1"][0] == 20.0
    assert by_q["ram_usage"][0] == pytest.approx(25.0)  # 8 GiB of 32 GiB
    assert by_q["cpu_core1_energy"][1] == pytest.approx(1002.5)
    assert not any(q.startswith("cpu_freq") for q in by_q)  # not imported: no use in metrics


def test_window_on_imported_rows() -> None:
    readings = read_energibridge_csv(DATA / "energibridge_amd_2cores.csv", OFFSET_S)
    info = MeterInfo("energibridge", True, None, False, "external_meter", (), 0.2)
    markers = (Marker(1000.3, "inference", "start"), Marker(1000.7, "inference", "end"))
    metrics = window_metrics(Timeline(tuple(readings), markers, (info,), interval_s=0.2))
    # interpolated at the edges: 65004 + 0.5 x 6 = 65007 J and 65016 + 0.5 x 4 = 65018 J
    assert metrics.cpu.energy_j == pytest.approx(11.0)
    assert metrics.cpu.method == "counter"
    assert "energibridge" in metrics.cpu.sensor
    # usage rows with 1000.3 < t <= 1000.7: t = 1000.4 and 1000.6, both means are 75
    assert metrics.cpu_usage_pct == pytest.approx(75.0)


FAKE_ENERGIBRIDGE = """#!{python}
# Behaves like `energibridge --output F --interval MS -- cmd`: 20 W until the command exits.
import subprocess, sys, time
args = sys.argv[1:]
split = args.index("--")
opts, cmd = args[:split], args[split + 1:]
out = opts[opts.index("--output") + 1]
interval = int(opts[opts.index("--interval") + 1]) / 1000
child = subprocess.Popen(cmd)
energy, last = 0.0, time.time()
with open(out, "w") as f:
    f.write("Delta,Time,CPU_ENERGY (J),CPU_USAGE_0,CPU_USAGE_1,TOTAL_MEMORY,USED_MEMORY\\n")
    while True:
        now = time.time()
        energy += 20.0 * (now - last)
        f.write(f"{{int((now - last) * 1000)}},{{now * 1000:.3f}},{{energy}},50,30,100,40\\n")
        f.flush()
        last = now
        if child.poll() is not None:
            break
        time.sleep(interval)
"""


def test_runs_beside_the_session_and_stops_cleanly(tmp_path: Path) -> None:
    binary = tmp_path / "energibridge"
    binary.write_text(FAKE_ENERGIBRIDGE.format(python=sys.executable))
    binary.chmod(0o755)
    meter = EnergiBridgeMeter(str(binary), interval_s=0.05, output_dir=tmp_path / "eb")
    assert meter.command(tmp_path / "x.csv")[1:5] == [
        "--output",
        str(tmp_path / "x.csv"),
        "--interval",
        "50",
    ]
    sampler = Sampler([meter], interval_s=0.1)
    sampler.start()
    time.sleep(0.5)
    sampler.mark("inference", "start")
    time.sleep(1.0)
    sampler.mark("inference", "end")
    began = time.monotonic()
    timeline = sampler.stop()
    assert time.monotonic() - began < 5.0
    assert timeline.errors == ()
    assert meter._process is not None and meter._process.returncode == 0
    metrics = window_metrics(timeline)
    assert metrics.cpu.energy_j == pytest.approx(20.0 * metrics.duration_s, rel=0.1)
    assert metrics.ram_usage_pct == pytest.approx(40.0)


def test_missing_binary_is_unavailable() -> None:
    availability = EnergiBridgeMeter("/nonexistent/energibridge").availability()
    assert not availability.available and "not found" in availability.reason
    assert os.environ.get("PATH") is not None
