"""CPU and DRAM energy from RAPL counters exposed by the Linux powercap framework.

Zones live under ``/sys/class/powercap`` as ``intel-rapl:<pkg>`` (package) and
``intel-rapl:<pkg>:<sub>`` (core, uncore, dram). AMD Zen CPUs are served by the same
``intel_rapl`` driver and appear under the same ``intel-rapl`` names (package only, no DRAM);
``amd-rapl`` names are accepted too in case a kernel exposes them. ``intel-rapl-mmio`` zones are
ignored on purpose: they are a second, power-limit interface to the same package and would count
the package twice. A ``psys`` zone covers package + DRAM + more, so it is kept as its own quantity
and never added to the CPU figure.

Counters are recorded raw (joules) with their wrap range; window maths unwraps them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .base import COUNTER, METHOD_COUNTER, Availability, Meter, Reading

_ZONE_RE = re.compile(r"^(intel-rapl|amd-rapl):\d+(:\d+)?$")
_CONTROL_TYPES = ("intel-rapl", "amd-rapl")
_UJ_PER_J = 1_000_000.0

ReadText = Callable[[Path], str]


def _read_text(path: Path) -> str:
    return path.read_text()


@dataclass(frozen=True, slots=True)
class RaplZone:
    zone_id: str  # e.g. "intel-rapl:0:2"
    name: str  # e.g. "dram", from the zone's ``name`` file
    path: Path
    max_energy_range_uj: int | None

    @property
    def quantity(self) -> str:
        return zone_quantity(self.name)

    @property
    def sensor(self) -> str:
        return f"{self.zone_id} {self.name}"


def zone_quantity(name: str) -> str:
    """Map a powercap zone name to the timeline quantity it measures."""
    if name.startswith("package"):
        return "cpu_energy"
    if name == "dram":
        return "dram_energy"
    if name == "core":
        return "cpu_cores_energy"
    if name == "uncore":
        return "cpu_uncore_energy"
    if name == "psys":
        return "platform_energy"
    return f"rapl_{re.sub(r'[^a-z0-9]+', '_', name.lower())}_energy"


def permission_hint(path: Path) -> str:
    return (
        f"{path} exists but is not readable by uid {os.getuid()}: RAPL energy counters are "
        "root-only since the PLATYPUS fix (CVE-2020-8694). Fix: run the measurement as root, or "
        "grant read access until the next reboot with "
        "`sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj`, or persistently with a "
        "udev rule or systemd-tmpfiles entry that does the same (see docs/meters.md)."
    )


def discover_zones(root: Path, read_text: ReadText = _read_text) -> list[RaplZone]:
    """Every RAPL zone under ``root``, flat (/sys/class/powercap) or nested (/sys/devices/...)."""
    found: dict[str, Path] = {}

    def visit(directory: Path, depth: int) -> None:
        if depth > 3 or not directory.is_dir():
            return
        for entry in sorted(directory.iterdir()):
            if _ZONE_RE.match(entry.name) and entry.name not in found:
                found[entry.name] = entry
                visit(entry, depth + 1)
            elif entry.name in _CONTROL_TYPES:
                visit(entry, depth + 1)

    visit(root, 0)
    zones = []
    for zone_id, path in sorted(found.items()):
        try:
            name = read_text(path / "name").strip()
        except OSError:
            name = zone_id
        try:
            max_range: int | None = int(read_text(path / "max_energy_range_uj").strip())
        except (OSError, ValueError):
            max_range = None
        zones.append(RaplZone(zone_id, name, path, max_range))
    return zones


class RaplMeter(Meter):
    """Energy counters of every RAPL zone (packages, DRAM, subzones, psys)."""

    name = "rapl"
    method = METHOD_COUNTER
    measures = ("cpu_energy", "dram_energy", "cpu_cores_energy", "cpu_uncore_energy")
    update_period_s = 0.001  # RAPL refreshes about every millisecond

    def __init__(
        self, root: str | Path = "/sys/class/powercap", read_text: ReadText = _read_text
    ) -> None:
        self.root = Path(root)
        self._read_text = read_text
        self.zones: list[RaplZone] = []

    def availability(self) -> Availability:
        if not self.root.is_dir():
            return Availability.no(
                f"no powercap directory at {self.root} (no intel_rapl driver, or a virtual "
                "machine that hides RAPL)",
                hardware_absent=True,
            )
        zones = discover_zones(self.root, self._read_text)
        if not zones:
            return Availability.no(f"no RAPL zones under {self.root}", hardware_absent=True)
        if not any(z.quantity == "cpu_energy" for z in zones):
            return Availability.no(f"RAPL zones under {self.root} but no package zone")
        for zone in zones:
            energy_file = zone.path / "energy_uj"
            try:
                int(self._read_text(energy_file).strip())
            except PermissionError:
                return Availability.no(permission_hint(energy_file))
            except (OSError, ValueError) as exc:
                return Availability.no(f"cannot read {energy_file}: {exc}")
        self.zones = zones
        return Availability.yes()

    def start(self) -> None:
        if not self.zones:
            self.zones = discover_zones(self.root, self._read_text)

    def read(self, t_s: float) -> list[Reading]:
        readings = []
        for zone in self.zones:
            energy_uj = int(self._read_text(zone.path / "energy_uj").strip())
            range_j = (
                zone.max_energy_range_uj / _UJ_PER_J
                if zone.max_energy_range_uj is not None
                else None
            )
            readings.append(
                Reading(
                    t_s,
                    self.name,
                    zone.quantity,
                    energy_uj / _UJ_PER_J,
                    "J",
                    COUNTER,
                    METHOD_COUNTER,
                    zone.sensor,
                    range_j,
                )
            )
        return readings

    def read_counters(self, t_s: float) -> list[Reading]:
        return self.read(t_s)
