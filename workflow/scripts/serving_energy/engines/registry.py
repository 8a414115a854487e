"""``load_engine``: the one entry point that builds any engine on any provider."""

from __future__ import annotations

from pathlib import Path

from .base import Engine, EngineOptions, validate_engine_provider


def load_engine(
    engine: str,
    provider: str,
    model_dir: Path,
    artefact_dir: Path | None,
    threads: int,
    options: EngineOptions | None = None,
) -> Engine:
    """Load ``model_dir`` (torch) or its exported ``artefact_dir`` (other engines) once.

    ``options`` (default: every engine at fp32) carries the settings a configuration may choose;
    each engine reads its own. Raises ValueError for an unknown engine or provider and for
    <openvino, cuda>; EngineError when the provider cannot really be used (no silent CPU fallback).
    """
    validate_engine_provider(engine, provider)
    options = options if options is not None else EngineOptions()
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    model_dir = Path(model_dir)
    if engine == "torch":
        from .torch_engine import TorchEngine

        return TorchEngine(provider, model_dir, threads)
    if artefact_dir is None:
        raise ValueError(f"engine {engine!r} needs the directory of its exported artefact")
    artefact_dir = Path(artefact_dir)
    if not artefact_dir.is_dir():
        raise FileNotFoundError(f"no exported {engine} artefact at {artefact_dir}")
    if engine == "onnx":
        from .onnx_engine import OnnxEngine

        return OnnxEngine(provider, model_dir, artefact_dir, threads)
    if engine == "openvino":
        from .openvino_engine import OpenVinoEngine

        return OpenVinoEngine(
            provider,
            model_dir,
            artefact_dir,
            threads,
            inference_precision=options.openvino_inference_precision,
        )
    from .torchscript_engine import TorchScriptEngine

    return TorchScriptEngine(provider, model_dir, artefact_dir, threads)
