"""Exporters: turn a transformers model directory into each engine's artefact directory.

Every artefact directory is self-contained (weights or graph, config, generation config,
tokenizer, ``standin.json`` when the source is a stand-in) and carries ``export.json``. Exports are
written into a temporary sibling directory and renamed into place only when complete, so a failed
export leaves nothing that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .engines.base import PROVIDERS, library_versions, torch_device_for
from .standins import STANDIN_FILE, read_standin_info

EXPORT_FILE = "export.json"
TORCHSCRIPT_FILE = "model.pt"
# Long enough that the traced graph holds no length-1 special cases; short enough to trace quickly.
TRACE_EXAMPLE_TOKENS = 8


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


def _atomic_export(
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
            library_versions=library_versions(),
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


def export_onnx(model_dir: Path, out_dir: Path) -> ExportInfo:
    """One ONNX graph with KV cache (``model.onnx``) for ORTModelForCausalLM, fp32, CPU and CUDA."""

    def write(tmp_dir: Path) -> dict[str, Any]:
        from optimum.exporters.onnx import main_export

        main_export(
            str(model_dir),
            output=tmp_dir,
            task="text-generation-with-past",
            device="cpu",
            # Our equivalence check compares generated ids and logits with torch; optimum's own
            # validation would only repeat a weaker version of it.
            do_validation=False,
            library_name="transformers",
            local_files_only=True,
        )
        return {"task": "text-generation-with-past", "dtype": "fp32"}

    return _atomic_export("onnx", model_dir, out_dir, None, write)


def export_openvino(model_dir: Path, out_dir: Path, weight_format: str = "fp32") -> ExportInfo:
    """A stateful OpenVINO IR with KV cache (``openvino_model.xml/.bin``).

    ``weight_format`` "fp32" (default) keeps every weight in fp32: optimum-intel would otherwise
    compress models above 1 B parameters to int8 on its own. "fp16" stores fp16 weights; "int8"
    and "int4" apply weight-only quantisation with nncf.
    """
    if weight_format not in ("fp32", "fp16", "int8", "int4"):
        raise ValueError(f"unknown OpenVINO weight_format {weight_format!r}")

    def write(tmp_dir: Path) -> dict[str, Any]:
        from optimum.exporters.openvino import main_export
        from optimum.intel import OVConfig

        if weight_format in ("fp32", "fp16"):
            # A non-None OVConfig without quantization_config disables the size-based int8 default.
            ov_config = OVConfig(dtype=weight_format)
        else:
            ov_config = OVConfig(quantization_config={"bits": int(weight_format[3:]), "sym": False})
        main_export(
            str(model_dir),
            output=tmp_dir,
            task="text-generation-with-past",
            ov_config=ov_config,
            stateful=True,
            convert_tokenizer=False,
            library_name="transformers",
            local_files_only=True,
        )
        return {
            "task": "text-generation-with-past",
            "weight_format": weight_format,
            "stateful": True,
        }

    return _atomic_export("openvino", model_dir, out_dir, None, write)


@contextlib.contextmanager
def traceable_masks() -> Iterator[None]:
    """Swap transformers' vmap-based mask builders for optimum's traceable ones, then restore.

    With transformers 4.57, ``torch.jit.trace`` fails with ``RuntimeError: unordered_map::at`` in
    ``masking_utils.sdpa_mask_recent_torch`` for most architectures.
    """
    from optimum.exporters.onnx.model_patcher import (
        eager_mask_without_vmap,
        find_packed_sequence_indices_patched,
        sdpa_mask_without_vmap,
    )
    from transformers import masking_utils

    registry = masking_utils.ALL_MASK_ATTENTION_FUNCTIONS
    saved = {name: registry[name] for name in ("sdpa", "eager")}
    saved_find = masking_utils.find_packed_sequence_indices
    registry.register("sdpa", sdpa_mask_without_vmap)
    registry.register("eager", eager_mask_without_vmap)
    masking_utils.find_packed_sequence_indices = find_packed_sequence_indices_patched
    try:
        yield
    finally:
        for name, function in saved.items():
            registry.register(name, function)
        masking_utils.find_packed_sequence_indices = saved_find


def _logits_module(model):
    import torch

    class LogitsOnly(torch.nn.Module):
        """input_ids [1, n] -> logits [1, n, vocab]; no cache, so one graph serves any length."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids):
            return self.inner(input_ids=input_ids, use_cache=False, return_dict=False)[0]

    return LogitsOnly(model)


def export_torchscript(model_dir: Path, out_dir: Path, provider: str) -> ExportInfo:
    """A traced logits module (``model.pt``) on ``provider``'s device; traced per device because a
    trace bakes in device placements."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")

    def write(tmp_dir: Path) -> dict[str, Any]:
        import torch
        from transformers import AutoModelForCausalLM

        device = torch_device_for(provider)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        model.to(device).eval()
        # torchscript=True makes transformers return tuples and untie weights where needed
        # for tracing; return_dict=False in the wrapper covers the rest.
        model.config.torchscript = True
        example = (
            torch.arange(TRACE_EXAMPLE_TOKENS, device=device).unsqueeze(0) % model.config.vocab_size
        )
        with traceable_masks(), torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(
                _logits_module(model), (example,), check_trace=False, strict=False
            )
        torch.jit.save(traced, str(tmp_dir / TORCHSCRIPT_FILE))
        model.config.torchscript = False
        model.config.save_pretrained(tmp_dir)
        model.generation_config.save_pretrained(tmp_dir)
        return {
            "file": TORCHSCRIPT_FILE,
            "device": str(device),
            "trace_example_tokens": TRACE_EXAMPLE_TOKENS,
            "kv_cache": False,
        }

    return _atomic_export("torchscript", model_dir, out_dir, provider, write)


EXPORTERS = {"onnx": export_onnx, "openvino": export_openvino, "torchscript": export_torchscript}
