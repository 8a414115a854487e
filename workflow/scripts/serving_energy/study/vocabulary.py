"""The study's vocabulary: engines, providers, their names in the paper, their order, and what each
configuration needs (an export, made once or per provider; the conda env that serves it).

This is the one definition. The config checks, the engines, the results layout, the analysis and
the rules (wildcard constraints, env choice) import it; tests/test_vocabulary.py checks that
config/schema.yaml's enums say the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# In the paper's order: the baseline first.
ENGINES: tuple[str, ...] = ("torch", "onnx", "openvino", "torchscript")
PROVIDERS: tuple[str, ...] = ("cpu", "cuda")
ENGINE_LABELS: dict[str, str] = {
    "torch": "TORCH",
    "onnx": "ONNX",
    "openvino": "OV",
    "torchscript": "JIT",
}
PROVIDER_LABELS: dict[str, str] = {"cpu": "CPU", "cuda": "CUDA"}

# The baseline of the savings and the reference of the equivalence check. It loads the model folder
# itself; every other engine loads an export of it.
REFERENCE_ENGINE = "torch"
EXPORTED_ENGINES: tuple[str, ...] = tuple(e for e in ENGINES if e != REFERENCE_ENGINE)
# One export serves every provider, except TorchScript's: a trace is specific to the device it was
# traced on.
EXPORTED_PER_PROVIDER: frozenset[str] = frozenset({"torchscript"})

# Combinations that do not exist, and why.
IMPOSSIBLE: dict[tuple[str, str], str] = {
    ("openvino", "cuda"): "OpenVINO has no CUDA execution provider "
    "(use <OV, CPU>, or onnx/torch/torchscript on cuda)",
}


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
    def exported(self) -> bool:
        """Whether the engine loads an export of the model rather than the model folder."""
        return self.engine in EXPORTED_ENGINES

    @property
    def serving_env(self) -> str:
        """The conda env (``envs/<name>.yaml``) of jobs that load this configuration: one per
        engine, except ONNX Runtime on CUDA, whose GPU build cannot share an env with the CPU one."""
        if (self.engine, self.provider) == ("onnx", "cuda"):
            return "serve-onnx-cuda"
        return f"serve-{self.engine}"


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
