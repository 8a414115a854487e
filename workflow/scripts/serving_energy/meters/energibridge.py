"""Run EnergiBridge beside a measurement and import its CSV onto the run's monotonic clock.

EnergiBridge (github.com/tdurieux/EnergiBridge) measures while a command runs:
``energibridge --output out.csv --interval <ms> -- <command>``. To cover a whole sampling
session we give it ``sleep <long>`` as the command and end that sleep at ``stop``; EnergiBridge then
writes its last row and exits.

Its CSV has ``Delta`` (ms since the previous row), ``Time`` (ms since the Unix epoch) and one
column per metric, sorted by name: ``CPU_ENERGY (J)`` (AMD) or ``PACKAGE_ENERGY (J)`` (Intel;
some releases spell it ``PACAKGE_ENERGY (J)``) cumulative, ``DRAM_ENERGY (J)``, per-core
``CORE{i}_ENERGY (J)``, ``CPU_USAGE_{i}`` (%), ``USED_MEMORY`` and ``TOTAL_MEMORY`` (bytes),
``CPU_POWER (Watts)`` or ``SYSTEM_POWER (Watts)`` where the platform reports power. Epoch times
map to the monotonic clock with one (time.time(), clock()) pair taken at start; the paper's
scripts instead shifted clocks by a hand-made hour.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .base import (
    COUNTER,
    GAUGE,
    METHOD_COUNTER,
    METHOD_EXTERNAL,
    METHOD_SAMPLED,
    METHOD_SAMPLED_POWER,
    Availability,
    Meter,
    Reading,
)

_ENERGY_COLUMNS = {
    "CPU_ENERGY (J)": "cpu_energy",
    "PACKAGE_ENERGY (J)": "cpu_energy",
    "PACAKGE_ENERGY (J)": "cpu_energy",
    "DRAM_ENERGY (J)": "dram_energy",
    "PP0_ENERGY (J)": "cpu_cores_energy",
    "PP1_ENERGY (J)": "rapl_pp1_energy",
}
_POWER_COLUMNS = {"CPU_POWER (Watts)": "cpu_power", "SYSTEM_POWER (Watts)": "system_power"}
_CORE_ENERGY = re.compile(r"^CORE(\d+)_ENERGY \(J\)$")
_CORE_USAGE = re.compile(r"^CPU_USAGE_(\d+)$")
METER_NAME = "energibridge"


def read_energibridge_csv(
    path: str | Path, epoch_offset_s: float, separator: str = ",", meter: str = METER_NAME
) -> list[Reading]:
    """Readings from an EnergiBridge CSV; ``t_s = Time / 1000 - epoch_offset_s`` where
    ``epoch_offset_s = time.time() - clock()`` was measured once on the run's clock."""
    readings: list[Reading] = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle, delimiter=separator):
            if not row.get("Time"):
                continue
            t_s = float(row["Time"]) / 1000.0 - epoch_offset_s

            def add(
                quantity: str,
                value: float,
                unit: str,
                kind: str,
                method: str,
                column: str,
                t_s: float = t_s,
            ) -> None:
                readings.append(
                    Reading(
                        t_s, meter, quantity, value, unit, kind, method, f"energibridge {column}"
                    )
                )

            usages = []
            for column, text in row.items():
                if column is None or text in (None, ""):
                    continue
                value = float(text)
                if column in _ENERGY_COLUMNS:
                    add(_ENERGY_COLUMNS[column], value, "J", COUNTER, METHOD_COUNTER, column)
                elif column in _POWER_COLUMNS:
                    add(_POWER_COLUMNS[column], value, "W", GAUGE, METHOD_SAMPLED_POWER, column)
                elif match := _CORE_ENERGY.match(column):
                    add(f"cpu_core{match[1]}_energy", value, "J", COUNTER, METHOD_COUNTER, column)
                elif match := _CORE_USAGE.match(column):
                    usages.append(value)
                    add(f"cpu_usage_core{match[1]}", value, "%", GAUGE, METHOD_SAMPLED, column)
            if usages:
                add(
                    "cpu_usage",
                    sum(usages) / len(usages),
                    "%",
                    GAUGE,
                    METHOD_SAMPLED,
                    "mean of CPU_USAGE_*",
                )
            used, total = row.get("USED_MEMORY"), row.get("TOTAL_MEMORY")
            if used and total and float(total) > 0:
                add(
                    "ram_usage",
                    100.0 * float(used) / float(total),
                    "%",
                    GAUGE,
                    METHOD_SAMPLED,
                    "USED_MEMORY/TOTAL_MEMORY",
                )
    return readings


class EnergiBridgeMeter(Meter):
    """Runs the EnergiBridge binary for the whole session; its readings arrive at ``finish``."""

    name = METER_NAME
    method = METHOD_EXTERNAL
    measures = ("cpu_energy", "dram_energy", "cpu_core{i}_energy", "cpu_usage", "ram_usage")

    def __init__(
        self,
        binary: str,
        interval_s: float = 0.2,
        output_dir: str | Path | None = None,
        max_duration_s: int = 7 * 24 * 3600,
        gpu: bool = False,
        clock: Callable[[], float] = time.monotonic,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.binary = binary
        self.interval_ms = max(1, round(interval_s * 1000))
        self.update_period_s = self.interval_ms / 1000.0
        self.output_dir = Path(output_dir) if output_dir else None
        self.max_duration_s = max_duration_s
        self.gpu = gpu
        self.clock = clock
        self.stop_timeout_s = stop_timeout_s
        self.csv_path: Path | None = None
        self.epoch_offset_s = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr_path: Path | None = None

    def _resolved(self) -> str | None:
        return shutil.which(self.binary)

    def availability(self) -> Availability:
        if self._resolved() is None:
            return Availability.no(
                f"EnergiBridge binary {self.binary!r} not found or not executable"
            )
        return Availability.yes()

    def command(self, csv_path: Path) -> list[str]:
        cmd = [
            self._resolved() or self.binary,
            "--output",
            str(csv_path),
            "--interval",
            str(self.interval_ms),
        ]
        if self.gpu:
            cmd.append("--gpu")
        return [*cmd, "--", "sleep", str(self.max_duration_s)]

    def start(self) -> None:
        directory = self.output_dir or Path(tempfile.mkdtemp(prefix="energibridge-"))
        directory.mkdir(parents=True, exist_ok=True)
        self.csv_path = directory / "energibridge.csv"
        self._stderr_path = directory / "energibridge.stderr"
        self.epoch_offset_s = time.time() - self.clock()
        with open(self._stderr_path, "wb") as stderr:
            self._process = subprocess.Popen(
                self.command(self.csv_path), stdout=subprocess.DEVNULL, stderr=stderr
            )

    def read(self, t_s: float) -> list[Reading]:
        return []  # EnergiBridge writes its own file; readings are imported at finish()

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        # End EnergiBridge's child (the sleep) so EnergiBridge writes its final row and exits
        # normally; signal EnergiBridge itself only if that does not work.
        try:
            import psutil

            for child in psutil.Process(process.pid).children(recursive=True):
                child.terminate()
        except Exception:  # noqa: BLE001, S110 - fall through to signalling the parent
            pass
        try:
            process.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def finish(self) -> list[Reading]:
        if self.csv_path is None or not self.csv_path.exists():
            stderr = self._stderr_path.read_text()[-500:] if self._stderr_path else ""
            raise RuntimeError(f"EnergiBridge wrote no CSV at {self.csv_path}; stderr: {stderr}")
        return read_energibridge_csv(self.csv_path, self.epoch_offset_s)
