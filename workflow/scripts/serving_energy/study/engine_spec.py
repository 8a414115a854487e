"""What the study knows of an engine before loading any of its code: one ``EngineSpec`` per engine.

Each engine is one plug-in folder, ``serving_energy/engines/<id>_engine/``, and its ``spec.py``
holds its ``SPEC``. A spec is pure data (it imports nothing above the study layer), so the config
checks, the plan and the rules read it without importing a runtime; the engine's code is reached
through the module paths the spec names (``engine_class``, ``exporter``), imported only by the job
that runs it. ``study/vocabulary.py`` lists the plug-ins, in the study's order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from serving_energy.study.engine_options import options_schema

BYTES_PER_FP32 = 4.0


def _fp32_bytes(config: Mapping) -> float:
    return BYTES_PER_FP32


def _no_settings(config: Mapping) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class EngineSpec:
    """One engine: its names, where it runs, what it loads and what the plan assumes of it."""

    id: str  # path-safe, the ``{engine}`` wildcard: "onnx"
    label: str  # the paper's notation inside ``<…, CPU>``: "ONNX"
    # Providers it runs on; any other gets the reason in ``unsupported`` (or a generic one).
    providers: tuple[str, ...]
    # "module:attribute" of the Engine subclass, built as ``cls(provider, model_dir,
    # artefact_dir, threads, options)``.
    engine_class: str
    summary: str = ""  # one line for docs and errors: what runs the model
    # The study's one reference: the baseline of the savings and what every other engine's
    # equivalence check compares with.
    reference: bool = False
    unsupported: Mapping[str, str] = field(default_factory=dict)
    # "module:attribute" of ``export(model_dir, out_dir, provider, **settings) -> ExportInfo``;
    # None: the engine loads the model folder itself (the reference engine).
    exporter: str | None = None
    export_per_provider: bool = False  # a TorchScript trace is specific to its device
    export_env: str | None = None  # envs/<name>.yaml of the export job
    # envs/<name>.yaml of jobs that load the engine, per provider (default: serve-<id>).
    serving_envs: Mapping[str, str] = field(default_factory=dict)
    # Distributions whose versions every engine info and export records.
    packages: tuple[str, ...] = ()
    # The engine's runtime options: a frozen dataclass whose fields, declared with
    # ``study/engine_options.option``, are the keys of the config's ``engines.<id>`` and its schema
    # (each checks its values in ``__post_init__``); None: it has none.
    options: type | None = None
    # The export's settings from the study's config (they change the artefact): keyword
    # arguments of the exporter, and params of the export job.
    export_settings: Callable[[Mapping], dict[str, Any]] = _no_settings
    # Stand-ins (offline random-weight models) its export can take: the tokenizers it knows
    # (None: any), and the architectures it cannot convert, with the reason. A study pairing it
    # with another stand-in is refused before anything runs.
    standin_tokenizers: tuple[str, ...] | None = None
    standin_unsupported: Mapping[str, str] = field(default_factory=dict)
    # -- what the plan assumes before anything is measured (docs/plan.md) ------------------
    # Export wall time: a fixed part and seconds per billion parameters.
    export_seconds: tuple[float, float] = (10.0, 60.0)
    # Peak memory of the export job in copies of the fp32 weights (over the interpreter's).
    export_weight_copies: float = 2.0
    # Extra disk the export holds for a moment, in copies of its artefact (ONNX's second copy).
    export_transient_copies: float = 0.0
    load_bytes_per_s: float = 1.0e9  # reading the artefact at server start
    # Bytes per parameter of the artefact on disk, and read per decoded token.
    artefact_bytes_per_parameter: Callable[[Mapping], float] = _fp32_bytes
    read_bytes_per_parameter: Callable[[Mapping], float] = _fp32_bytes

    def __post_init__(self) -> None:
        if not self.id.isidentifier() or "-" in self.id or self.id != self.id.lower():
            raise ValueError(f"engine id {self.id!r}: lowercase letters, digits and '_' only")
        if not self.providers:
            raise ValueError(f"engine {self.id!r} runs on no provider")
        object.__setattr__(self, "unsupported", MappingProxyType(dict(self.unsupported)))
        object.__setattr__(self, "serving_envs", MappingProxyType(dict(self.serving_envs)))
        object.__setattr__(
            self, "standin_unsupported", MappingProxyType(dict(self.standin_unsupported))
        )
        if self.exporter is not None and self.export_env is None:
            raise ValueError(f"engine {self.id!r} has an exporter but no export_env")
        if self.options is not None:
            try:
                options_schema(self.options)
            except TypeError as error:
                raise TypeError(f"engine {self.id!r}: {error}") from None

    @property
    def exported(self) -> bool:
        """Whether the engine loads an export of the model rather than the model folder."""
        return self.exporter is not None

    def standin_problem(self, architecture: str, tokenizer: str) -> str | None:
        """Why this engine cannot take a stand-in of ``architecture`` with ``tokenizer``, or None."""
        if architecture in self.standin_unsupported:
            return self.standin_unsupported[architecture]
        if self.standin_tokenizers is not None and tokenizer not in self.standin_tokenizers:
            return (
                f"{self.id} converts stand-ins with tokenizer "
                f"{' or '.join(self.standin_tokenizers)} only, not {tokenizer!r}"
            )
        return None

    def serving_env(self, provider: str) -> str:
        return self.serving_envs.get(provider, f"serve-{self.id}")

    def option_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self.options)) if self.options is not None else ()

    def options_schema(self) -> dict[str, Any] | None:
        """The JSON-schema fragment of the config's ``engines.<id>``; None without options."""
        return options_schema(self.options) if self.options is not None else None

    def make_options(self, settings: Mapping[str, Any] | None = None):
        """The engine's options from its config section (``engines.<id>``); unknown keys are an
        error naming them. None when the engine has no options."""
        settings = dict(settings or {})
        unknown = sorted(set(settings) - set(self.option_names()))
        if unknown:
            known = ", ".join(self.option_names()) or "none"
            raise ValueError(f"engine {self.id!r} has no option {', '.join(unknown)} ({known})")
        return self.options(**settings) if self.options is not None else None
