"""``load_engine``: the one entry point that builds any engine on any provider, by its spec."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from serving_energy.core.lean_imports import skip_unused_transformers_imports
from serving_energy.study.vocabulary import ENGINE_SPECS

from .base import Engine, validate_engine_provider


def resolve(path: str) -> Any:
    """The attribute a spec's "module:attribute" path names (importing its module)."""
    module, _, attribute = path.partition(":")
    if not attribute:
        raise ValueError(f"{path!r} is not 'module:attribute'")
    return getattr(importlib.import_module(module), attribute)


def load_engine(
    engine: str,
    provider: str,
    model_dir: Path,
    artefact_dir: Path | None,
    threads: int,
    options: Mapping[str, Any] | None = None,
) -> Engine:
    """Load ``model_dir`` (the reference engine) or its exported ``artefact_dir`` once.

    ``options`` are the engine's own settings (the config's ``engines.<engine>``; default: the
    engine's defaults, fp32 everywhere), checked by the engine's options type. Raises ValueError
    for an unknown engine, provider or option and for a configuration that does not exist
    (<OV, CUDA>); EngineError when the provider cannot really be used (no silent CPU fallback).
    """
    validate_engine_provider(engine, provider)
    skip_unused_transformers_imports()
    spec = ENGINE_SPECS[engine]
    engine_options = spec.make_options(options)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if spec.exported:
        if artefact_dir is None:
            raise ValueError(f"engine {engine!r} needs the directory of its exported artefact")
        artefact_dir = Path(artefact_dir)
        if not artefact_dir.is_dir():
            raise FileNotFoundError(f"no exported {engine} artefact at {artefact_dir}")
    else:
        artefact_dir = None
    engine_class = resolve(spec.engine_class)
    return engine_class(provider, Path(model_dir), artefact_dir, threads, engine_options)
