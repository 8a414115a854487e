"""RAPL on a fake powercap tree: two packages, DRAM, a subzone, a wrap and an unreadable file."""

from pathlib import Path

import pytest

from serving_energy.meters import Marker, RaplMeter, Timeline, discover_zones, window_metrics
from serving_energy.meters.base import MeterInfo

RANGE_UJ = 262143328850  # a real package max_energy_range_uj


def make_zone(path: Path, name: str, energy_uj: int, range_uj: int = RANGE_UJ) -> Path:
    path.mkdir(parents=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{range_uj}\n")
    return path


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    """Nested layout as under /sys/devices/virtual/powercap, plus an mmio duplicate."""
    root = tmp_path / "powercap"
    rapl = root / "intel-rapl"
    make_zone(rapl / "intel-rapl:0", "package-0", 262_143_000_000)
    make_zone(rapl / "intel-rapl:0" / "intel-rapl:0:0", "core", 5_000_000)
    make_zone(rapl / "intel-rapl:0" / "intel-rapl:0:2", "dram", 100)
    make_zone(rapl / "intel-rapl:1", "package-1", 1_000_000)
    make_zone(root / "intel-rapl-mmio" / "intel-rapl-mmio:0", "package-0", 42)
    return root


def set_energy(root: Path, zone: str, energy_uj: int) -> None:
    matches = list(root.rglob(zone))
    assert len(matches) == 1
    (matches[0] / "energy_uj").write_text(f"{energy_uj}\n")


def test_discovers_packages_dram_and_subzones_but_not_mmio(powercap: Path) -> None:
    zones = {z.zone_id: z for z in discover_zones(powercap)}
    assert sorted(zones) == ["intel-rapl:0", "intel-rapl:0:0", "intel-rapl:0:2", "intel-rapl:1"]
    assert zones["intel-rapl:0"].quantity == "cpu_energy"
    assert zones["intel-rapl:0:2"].quantity == "dram_energy"
    assert zones["intel-rapl:0:0"].quantity == "cpu_cores_energy"
    assert zones["intel-rapl:1"].max_energy_range_uj == RANGE_UJ


def test_flat_class_layout_with_amd_names(tmp_path: Path) -> None:
    make_zone(tmp_path / "amd-rapl:0", "package-0", 10)
    make_zone(tmp_path / "intel-rapl:1", "package-1", 20)
    assert [z.zone_id for z in discover_zones(tmp_path)] == ["amd-rapl:0", "intel-rapl:1"]


def test_reads_joules_with_range(powercap: Path) -> None:
    meter = RaplMeter(powercap)
    assert meter.availability().available
    meter.start()
    by_sensor = {r.sensor: r for r in meter.read(1.5)}
    package0 = by_sensor["intel-rapl:0 package-0"]
    assert package0.value == pytest.approx(262_143.0)
    assert package0.range_max == pytest.approx(262_143.328850)
    assert package0.unit == "J" and package0.kind == "counter" and package0.method == "counter"
    assert package0.t_s == 1.5
    assert by_sensor["intel-rapl:0:2 dram"].value == pytest.approx(0.0001)


def test_window_sums_packages_and_dram_across_a_wrap(powercap: Path) -> None:
    meter = RaplMeter(powercap)
    assert meter.availability().available
    meter.start()
    before = meter.read_counters(0.0)
    set_energy(powercap, "intel-rapl:0", 500_000)  # wrapped past max_energy_range_uj
    set_energy(powercap, "intel-rapl:0:0", 9_000_000)
    set_energy(powercap, "intel-rapl:0:2", 600_100)
    set_energy(powercap, "intel-rapl:1", 3_000_000)
    after = meter.read_counters(1.0)
    timeline = Timeline(
        samples=tuple(before + after),
        markers=(Marker(0.0, "inference", "start"), Marker(1.0, "inference", "end")),
        meters=(MeterInfo("rapl", True, None, False, "counter", (), 0.001),),
        interval_s=0.1,
    )
    metrics = window_metrics(timeline)
    # package-0: (262143.328850 - 262143.0) + 0.5 = 0.82885 J; package-1: 2 J; DRAM: 0.6 J.
    # The core subzone (4 J) is inside package-0 and must not be added.
    assert metrics.cpu.energy_j == pytest.approx(0.82885 + 2.0 + 0.6)
    assert metrics.cpu.domains_j == pytest.approx(
        {
            "intel-rapl:0 package-0": 0.82885,
            "intel-rapl:1 package-1": 2.0,
            "intel-rapl:0:2 dram": 0.6,
        }
    )
    assert metrics.cpu.method == "counter"
    assert metrics.flags.counter_wrap
    assert not metrics.flags.counter_reset_unknown_range


def test_unreadable_energy_file_names_the_fix(powercap: Path) -> None:
    # Tests run as root, for whom chmod 000 changes nothing: inject the PermissionError the
    # kernel gives a normal user since the PLATYPUS fix.
    def read_text(path: Path) -> str:
        if path.name == "energy_uj" and path.parent.name == "intel-rapl:1":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text()

    availability = RaplMeter(powercap, read_text=read_text).availability()
    assert not availability.available
    assert not availability.hardware_absent
    assert "intel-rapl:1/energy_uj" in availability.reason
    assert "CVE-2020-8694" in availability.reason
    assert "chmod o+r" in availability.reason


def test_missing_powercap_is_hardware_absent(tmp_path: Path) -> None:
    availability = RaplMeter(tmp_path / "nope").availability()
    assert not availability.available and availability.hardware_absent
    assert "no powercap directory" in availability.reason
    empty = RaplMeter(tmp_path).availability()
    assert not empty.available and "no RAPL zones" in empty.reason
