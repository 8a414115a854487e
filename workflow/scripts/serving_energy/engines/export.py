"""Exports: turn a transformers model directory into an engine's artefact directory.

``export_model`` runs the exporter an engine's spec names (``<id>_engine/export.py``); this
module holds what every exporter shares (``atomic_export``, ``export.json``).

Every artefact directory is self-contained (weights or graph, config, generation config,
tokenizer, ``standin.json`` when the source is a stand-in) and carries ``export.json``. Exports are
written into a temporary sibling directory and renamed into place only when complete, so a failed
export leaves nothing that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from serving_energy.core.lean_imports import skip_unused_transformers_imports
from serving_energy.core.versions import library_versions
from serving_energy.data.standins import STANDIN_FILE, read_standin_info
from serving_energy.study.vocabulary import ENGINE_PACKAGES, ENGINE_SPECS

EXPORT_FILE = "export.json"


class ExportError(RuntimeError):
    """An export failed; the message names the model directory, its architecture and the engine."""


@dataclass(frozen=True)
class ExportInfo:
    engine: str
    provider: str | None  # None: one artefact serves every provider of the engine
    model_dir: str
    artefact_dir: str
    architecture: str
    duration_s: float
    size_bytes: int
    standin: bool
    library_versions: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def read_export_info(artefact_dir: Path) -> dict[str, Any]:
    path = Path(artefact_dir) / EXPORT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{artefact_dir} holds no {EXPORT_FILE}: not a complete export")
    return json.loads(path.read_text())


def architecture_of(model_dir: Path) -> str:
    try:
        return json.loads((Path(model_dir) / "config.json").read_text()).get("model_type", "?")
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportError(f"{model_dir} is not a transformers model directory: {exc}") from exc


def directory_size_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())


def copy_tokenizer_and_metadata(model_dir: Path, out_dir: Path) -> None:
    """Make the artefact self-contained: tokenizer files and stand-in marker beside the graph."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out_dir)
    if (Path(model_dir) / STANDIN_FILE).is_file():
        shutil.copy2(Path(model_dir) / STANDIN_FILE, out_dir / STANDIN_FILE)


def atomic_export(
    engine: str,
    model_dir: Path,
    out_dir: Path,
    provider: str | None,
    write: Callable[[Path], dict[str, Any]],
) -> ExportInfo:
    """Run ``write(tmp_dir)`` and move the result to ``out_dir`` only if it completes."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    architecture = architecture_of(model_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir()
    start = time.perf_counter()
    try:
        details = write(tmp_dir) or {}
        copy_tokenizer_and_metadata(model_dir, tmp_dir)
        duration_s = time.perf_counter() - start
        info = ExportInfo(
            engine=engine,
            provider=provider,
            model_dir=str(model_dir),
            artefact_dir=str(out_dir),
            architecture=architecture,
            duration_s=duration_s,
            size_bytes=directory_size_bytes(tmp_dir),
            standin=read_standin_info(model_dir) is not None,
            library_versions=library_versions(ENGINE_PACKAGES),
            details=details,
        )
        (tmp_dir / EXPORT_FILE).write_text(
            json.dumps(asdict(info), indent=2, sort_keys=True) + "\n"
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp_dir, out_dir)
        return info
    except Exception as exc:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        target = f"{engine}" + (f" ({provider})" if provider else "")
        raise ExportError(
            f"cannot export {model_dir} (architecture {architecture!r}) to {target}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def export_model(
    engine: str,
    model_dir: Path,
    out_dir: Path,
    provider: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> ExportInfo:
    """Export ``model_dir`` for ``engine`` into ``out_dir`` with the exporter its spec names.

    ``provider`` is needed (and only accepted) where the engine's artefact is specific to its
    device; ``settings`` are the export's own (``EngineSpec.export_settings`` of the config).
    """
    from serving_energy.engines.registry import resolve

    spec = ENGINE_SPECS.get(engine)
    if spec is None:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINE_SPECS)}")
    if not spec.exported:
        raise ValueError(f"engine {engine!r} loads the model folder itself: there is no export")
    skip_unused_transformers_imports()
    if spec.export_per_provider:
        if provider not in spec.providers:
            raise ValueError(
                f"{engine} exports per provider: expected one of {', '.join(spec.providers)}, "
                f"got {provider!r}"
            )
        return resolve(spec.exporter)(model_dir, out_dir, provider, **dict(settings or {}))
    if provider is not None:
        raise ValueError(f"one {engine} export serves every provider: no provider is taken")
    return resolve(spec.exporter)(model_dir, out_dir, **dict(settings or {}))
