"""The study's vocabulary: engines, providers, their names in the paper, their order, and what each
configuration needs (an export, made once or per provider; the conda env that serves it).

This is the one definition, read from the engines' plug-in specs (``study/engine_spec.py``). The
config checks, the engines, the results layout, the analysis and the rules (wildcard constraints,
env choice) import it; tests/test_vocabulary.py checks that config/schema.yaml's enums say the
same.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass

from serving_energy.core.versions import WORKFLOW_PACKAGES
from serving_energy.study.engine_spec import EngineSpec

# The engine plug-ins (``serving_energy/engines/<name>/``), in the paper's order: the baseline
# first. A new engine is one folder and one entry here.
ENGINE_PLUGINS: tuple[str, ...] = (
    "torch_engine",
    "onnx_engine",
    "openvino_engine",
    "torchscript_engine",
    "torch_compile_engine",
    "llama_cpp_engine",
)


def _load_specs(plugins: Iterable[str]) -> dict[str, EngineSpec]:
    specs: dict[str, EngineSpec] = {}
    for plugin in plugins:
        # A spec module imports only the core and study layers (tests/test_layers.py).
        spec = importlib.import_module(f"serving_energy.engines.{plugin}.spec").SPEC
        if spec.id in specs:
            raise ValueError(f"engine id {spec.id!r} is declared by two plug-ins")
        specs[spec.id] = spec
    return specs


ENGINE_SPECS: dict[str, EngineSpec] = _load_specs(ENGINE_PLUGINS)
ENGINES: tuple[str, ...] = tuple(ENGINE_SPECS)
PROVIDERS: tuple[str, ...] = ("cpu", "cuda")
ENGINE_LABELS: dict[str, str] = {engine: spec.label for engine, spec in ENGINE_SPECS.items()}
PROVIDER_LABELS: dict[str, str] = {"cpu": "CPU", "cuda": "CUDA"}

# The baseline of the savings and the reference of the equivalence check (exactly one).
(REFERENCE_ENGINE,) = (engine for engine, spec in ENGINE_SPECS.items() if spec.reference)
# Every other engine is checked against it; most load an export of the model.
CHECKED_ENGINES: tuple[str, ...] = tuple(e for e in ENGINES if e != REFERENCE_ENGINE)
EXPORTED_ENGINES: tuple[str, ...] = tuple(e for e in ENGINES if ENGINE_SPECS[e].exported)
# One export serves every provider, except where the artefact is specific to its device
# (TorchScript's trace).
EXPORTED_PER_PROVIDER: frozenset[str] = frozenset(
    e for e in ENGINES if ENGINE_SPECS[e].export_per_provider
)

# Combinations that do not exist, and why.
IMPOSSIBLE: dict[tuple[str, str], str] = {
    (engine, provider): spec.unsupported.get(provider, f"{spec.label} does not run on {provider}")
    for engine, spec in ENGINE_SPECS.items()
    for provider in PROVIDERS
    if provider not in spec.providers
}
# What every engine info and export records the version of: the engines' packages, in order.
ENGINE_PACKAGES: tuple[str, ...] = tuple(
    dict.fromkeys(package for spec in ENGINE_SPECS.values() for package in spec.packages)
)
# What a run's machine record and the replication package list.
RECORDED_PACKAGES: tuple[str, ...] = (*ENGINE_PACKAGES, *WORKFLOW_PACKAGES)


# A configuration's path-safe id; its fields are also the rules' wildcard names.
CONFIGURATION_ID = "{engine}-{provider}"


class ConfigError(ValueError):
    """The study's config cannot run; the message names the offending key."""


@dataclass(frozen=True, order=True)
class Configuration:
    """One engine on one provider, e.g. ``<ONNX, CPU>``; only combinations that exist."""

    engine: str
    provider: str

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        if self.provider not in PROVIDERS:
            raise ConfigError(
                f"unknown provider {self.provider!r}; choose one of {', '.join(PROVIDERS)}"
            )
        why = IMPOSSIBLE.get((self.engine, self.provider))
        if why is not None:
            raise ConfigError(f"{self.label} does not exist: {why}")

    @property
    def id(self) -> str:
        """Path-safe id, e.g. ``onnx-cpu``."""
        return CONFIGURATION_ID.format(engine=self.engine, provider=self.provider)

    @property
    def label(self) -> str:
        """The paper's notation, e.g. ``<ONNX, CPU>``."""
        return f"<{ENGINE_LABELS[self.engine]}, {PROVIDER_LABELS[self.provider]}>"

    @classmethod
    def from_id(cls, configuration_id: str) -> Configuration:
        engine, _, provider = configuration_id.partition("-")
        return cls(engine, provider)

    @property
    def is_reference(self) -> bool:
        return self.engine == REFERENCE_ENGINE

    @property
    def spec(self) -> EngineSpec:
        return ENGINE_SPECS[self.engine]

    @property
    def exported(self) -> bool:
        """Whether the engine loads an export of the model rather than the model folder."""
        return self.spec.exported

    @property
    def serving_env(self) -> str:
        """The conda env (``envs/<name>.yaml``) of jobs that load this configuration: the
        engine's own, per provider where its spec says so (ONNX Runtime's GPU build)."""
        return self.spec.serving_env(self.provider)


# Every configuration that exists, in the paper's order: CPU before CUDA, the baseline first.
CONFIGURATIONS: tuple[Configuration, ...] = tuple(
    Configuration(engine, provider)
    for provider in PROVIDERS
    for engine in ENGINES
    if (engine, provider) not in IMPOSSIBLE
)
CONFIGURATION_IDS: tuple[str, ...] = tuple(c.id for c in CONFIGURATIONS)
CONFIGURATION_ORDER: tuple[str, ...] = tuple(c.label for c in CONFIGURATIONS)


def baseline_label(provider: str) -> str:
    """The label of the provider's baseline, e.g. ``<TORCH, CPU>``."""
    return Configuration(REFERENCE_ENGINE, provider).label


def order_configurations(labels: Iterable[str]) -> list[str]:
    """Known configuration labels in the paper's order, unknown ones after them alphabetically."""
    rank = {label: i for i, label in enumerate(CONFIGURATION_ORDER)}
    return sorted(set(labels), key=lambda label: (rank.get(label, len(rank)), label))
