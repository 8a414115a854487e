"""Runtime engines behind one interface; see docs/engines.md.

Each engine is one plug-in folder, ``<id>_engine/`` (its ``spec``, ``engine`` and ``export``
modules); ``registry.load_engine`` builds any of them by id. The names below are imported on first
use: the study layer reads the plug-ins' specs, and importing a spec must not import the engines'
shared code (which imports the study layer).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Engine": "base",
    "EngineError": "base",
    "EngineInfo": "base",
    "Generation": "base",
    "validate_engine_provider": "base",
    "load_engine": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
