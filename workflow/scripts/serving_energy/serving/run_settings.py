"""The settings of one measured run, typed: what it measures (its identity) and how it is operated.

The measure rule hands the run its identity (``study.measurement_identity``, the rule's params) and
the protocol's operational settings (time-outs, bind address) as plain dicts; this module turns them
into records, so the protocol never reads a settings key as a string.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from serving_energy.study.design import settings_from_engine_options
from serving_energy.study.layout import RunKey


@dataclass(frozen=True)
class CooldownSettings:
    min_s: float = 60.0
    adaptive: bool = True
    cpu_usage_below_pct: float = 10.0
    timeout_s: float = 600.0


@dataclass(frozen=True)
class ProtocolSettings:
    idle_before_s: float = 300.0
    idle_after_s: float = 300.0
    warmup_requests: int = 0
    cooldown: CooldownSettings = field(default_factory=CooldownSettings)
    request_timeout_s: float = 600.0
    server_start_timeout_s: float = 1800.0
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class GenerationSettings:
    max_length: int = 128
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class RunSettings:
    key: RunKey
    identity: Mapping  # as the rule gave it: recorded verbatim, compared when a run is replaced
    model: Mapping
    threads: int | None  # None: every core of the machine that measures
    generation: GenerationSettings
    protocol: ProtocolSettings
    meters: Mapping
    # The engine's own options (config ``engines.<engine>``), e.g. {"inference_precision": "f32"}
    engine_options: Mapping = field(default_factory=dict)

    @property
    def standin(self) -> bool:
        return "standin" in self.model

    @classmethod
    def from_identity(cls, identity: Mapping, operation: Mapping | None = None) -> RunSettings:
        """``identity`` from ``study.measurement_identity``; ``operation`` the config's protocol
        section, of which only the keys that do not change the measurement are taken."""
        operation = operation or {}
        protocol = identity["protocol"]
        return cls(
            key=RunKey.of(
                identity["model"]["alias"],
                identity["engine"],
                identity["provider"],
                identity["rep"],
            ),
            identity=identity,
            model=dict(identity["model"]),
            threads=identity.get("threads"),
            generation=GenerationSettings(**identity["generation"]),
            protocol=ProtocolSettings(
                idle_before_s=protocol["idle_before_s"],
                idle_after_s=protocol["idle_after_s"],
                warmup_requests=protocol["warmup_requests"],
                cooldown=CooldownSettings(**protocol["cooldown"]),
                **{
                    key: operation[key]
                    for key in ("request_timeout_s", "server_start_timeout_s", "host")
                    if key in operation
                },
            ),
            meters=dict(identity["meters"]),
            engine_options=settings_from_engine_options(
                identity["engine"], identity.get("engine_options") or {}
            ),
        )


def resolve_threads(configured: int | None) -> tuple[int, str]:
    """The engine's thread count and where it came from (recorded in every run)."""
    if configured is not None:
        return int(configured), "config"
    try:
        return len(os.sched_getaffinity(0)), "all cores available to the job"
    except AttributeError:  # not Linux
        return os.cpu_count() or 1, "all cores of the machine"
