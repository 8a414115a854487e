"""Runtime engines behind one interface; see docs/engines.md."""

from .base import (
    OPENVINO_INFERENCE_PRECISIONS,
    Engine,
    EngineError,
    EngineInfo,
    EngineOptions,
    Generation,
    validate_engine_provider,
)
from .registry import load_engine

__all__ = [
    "OPENVINO_INFERENCE_PRECISIONS",
    "Engine",
    "EngineError",
    "EngineInfo",
    "EngineOptions",
    "Generation",
    "load_engine",
    "validate_engine_provider",
]
