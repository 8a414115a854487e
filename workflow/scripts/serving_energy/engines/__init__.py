"""Runtime engines behind one interface; see docs/engines.md."""

from .base import (
    ENGINES,
    PROVIDERS,
    Engine,
    EngineError,
    EngineInfo,
    Generation,
    validate_engine_provider,
)
from .registry import load_engine

__all__ = [
    "ENGINES",
    "PROVIDERS",
    "Engine",
    "EngineError",
    "EngineInfo",
    "Generation",
    "load_engine",
    "validate_engine_provider",
]
