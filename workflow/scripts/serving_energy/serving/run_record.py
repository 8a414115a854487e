"""What a run records: ``RunRecord`` (run.json, or failure.json for a failed attempt) and the
rows of requests.parquet, typed; flat dicts and frames only where they are written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from serving_energy.meters.window import WindowMetrics
from serving_energy.serving.client import RequestRecord
from serving_energy.serving.run_settings import ProtocolSettings
from serving_energy.study.layout import RunKey


@dataclass(frozen=True)
class CooldownRecord:
    waited_s: float
    settled: bool  # False when the adaptive wait ran out before the CPU was back near idle
    last_cpu_usage_pct: float | None


@dataclass(frozen=True)
class RunRecord:
    """One run as measured: its key, outcome, counts, what ran it, its metrics and verdicts.

    The mappings (equivalence, inputs, engine_info, roofline, validity, identity, attempt,
    provenance, machine) are records made elsewhere and kept as they were given.
    """

    key: RunKey
    failure: str | None  # None: the run is complete
    model_info: Mapping[str, Any]
    standin: bool
    started_at: str
    finished_at: str
    threads: int
    threads_source: str
    n_requests: int
    n_failed: int
    n_warmup_requests: int
    new_tokens: int
    load_duration_s: float | None
    server_load_duration_s: float | None
    cooldown: CooldownRecord | None
    equivalence: Mapping[str, Any]
    inputs: Mapping[str, str]  # how each input was verified
    engine_info: Mapping[str, Any] | None
    device: str | None
    metrics: WindowMetrics | None  # None: the run never completed an inference window
    roofline: Mapping[str, Any]
    validity: Mapping[str, Any] | None
    identity: Mapping[str, Any]
    protocol: ProtocolSettings
    attempt: Mapping[str, Any]
    provenance: Mapping[str, Any]  # study, config hash, run order: recorded, never compared
    machine: Mapping[str, Any]

    @property
    def status(self) -> str:
        return "failed" if self.failure else "ok"

    @property
    def valid(self) -> bool | None:
        return None if self.validity is None else self.validity["valid"]

    def to_dict(self) -> dict[str, Any]:
        """run.json's content."""
        return {
            "status": self.status,
            "failure": self.failure,
            **self.key.to_dict(),
            "model_info": dict(self.model_info),
            "standin": self.standin,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "threads": self.threads,
            "threads_source": self.threads_source,
            "n_requests": self.n_requests,
            "n_failed": self.n_failed,
            "n_warmup_requests": self.n_warmup_requests,
            "new_tokens": self.new_tokens,
            "load_duration_s": self.load_duration_s,
            "server_load_duration_s": self.server_load_duration_s,
            "cooldown": asdict(self.cooldown) if self.cooldown else None,
            "equivalence": self.equivalence,
            "inputs": dict(self.inputs),
            "engine_info": self.engine_info,
            "device": self.device,
            "metrics": self.metrics.to_dict() if self.metrics is not None else {},
            "roofline": self.roofline,
            "valid": self.valid,
            "validity": self.validity,
            "identity": dict(self.identity),
            "protocol": asdict(self.protocol),
            "attempt": self.attempt,
            **dict(self.provenance),
            "machine": self.machine,
        }


REQUESTS_SCHEMA = {
    "index": pl.Int64,
    "task_id": pl.String,
    "prompt": pl.String,
    "output": pl.String,
    "prompt_tokens": pl.Int64,
    "new_tokens": pl.Int64,
    "start_s": pl.Float64,
    "end_s": pl.Float64,
    "latency_s": pl.Float64,
    "server_latency_s": pl.Float64,
    "status": pl.String,
    "http_status": pl.Int64,
    "error": pl.String,
    "warmup": pl.Boolean,
}


def requests_frame(records: Sequence[RequestRecord]) -> pl.DataFrame:
    """requests.parquet: one row per request, warm-up requests (negative index) marked."""
    rows = [{**asdict(record), "warmup": record.index < 0} for record in records]
    return pl.DataFrame(rows, schema=REQUESTS_SCHEMA)
