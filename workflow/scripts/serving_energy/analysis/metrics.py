"""The study's dependent variables: their columns in the runs table and how to print them.

The tests (``stats``), the tables and the figures all use these.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving_energy.study.vocabulary import PROVIDERS


@dataclass(frozen=True)
class Metric:
    """A dependent variable: its column in the runs table and how to print it."""

    column: str
    label: str
    unit: str
    providers: tuple[str, ...] = PROVIDERS  # providers on which it is measured

    @property
    def axis_label(self) -> str:
        return f"{self.label} [{self.unit}]"


METRICS: tuple[Metric, ...] = (
    Metric("energy_global_j", "Global energy", "J"),
    Metric("energy_cpu_j", "CPU energy", "J"),
    Metric("energy_gpu_j", "GPU energy", "J", ("cuda",)),
    Metric("duration_s", "Execution time", "s"),
    Metric("cpu_usage_pct", "CPU usage", "%"),
    Metric("ram_usage_pct", "RAM usage", "%"),
    Metric("gpu_usage_pct", "GPU usage", "%", ("cuda",)),
    Metric("gpu_mem_util_pct", "GPU memory utilisation", "%", ("cuda",)),
    Metric("gpu_mem_used_pct", "GPU used memory", "%", ("cuda",)),
)
METRICS_BY_COLUMN: dict[str, Metric] = {m.column: m for m in METRICS}
