"""Exporters: turn a transformers model directory into each engine's artefact directory.

Every artefact directory is self-contained (weights or graph, config, generation config,
tokenizer, ``standin.json`` when the source is a stand-in) and carries ``export.json``. Exports are
written into a temporary sibling directory and renamed into place only when complete, so a failed
export leaves nothing that looks finished.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from serving_energy.core.versions import ENGINE_PACKAGES, library_versions
from serving_energy.data.standins import STANDIN_FILE, read_standin_info
from serving_energy.engines.base import torch_device_for
from serving_energy.engines.torchscript_engine import TORCHSCRIPT_FILE, TORCHSCRIPT_FORMAT
from serving_energy.study.vocabulary import PROVIDERS

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
            # optimum's post-processing (for this task: deduplicating tied weights) loads the
            # whole graph while the torch model is still held: codegemma-2b's export was killed
            # at 24 GB. It is done below, once the torch model is gone (graphs under 2 GB).
            no_post_process=True,
        )
        gc.collect()
        tied = _deduplicate_tied_weights(model_dir, tmp_dir / "model.onnx")
        return {"task": "text-generation-with-past", "dtype": "fp32", **tied}

    return _atomic_export("onnx", model_dir, out_dir, None, write)


def _deduplicate_tied_weights(model_dir: Path, onnx_path: Path) -> dict[str, Any]:
    """optimum's deduplication of tied weights (the exporter writes a tied embedding and output
    head twice), with the torch model's tying read from a model on the meta device (no memory)
    instead of the loaded one.

    Only for graphs below protobuf's 2 GB: optimum's deduplication serialises the whole graph in
    memory, which fails beyond it ("Failed to serialize proto": bloomz-560m, starcoderbase-1b,
    bloomz-1b1, codegemma-2b). A larger graph keeps the duplicate: the same numbers twice, so the
    same results, one embedding's bytes more on disk and in memory (said in export.json)."""
    import onnx
    import torch
    from optimum.onnx import remove_duplicate_weights_from_tied_info
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    skeleton.tie_weights()
    tied = _tied_parameter_groups(skeleton)
    external = [
        p for p in onnx_path.parent.iterdir() if p.name != onnx_path.name and "onnx" in p.name
    ]
    graph_bytes = sum(p.stat().st_size for p in [onnx_path, *external])
    if not tied or graph_bytes >= onnx.checker.MAXIMUM_PROTOBUF:
        return {"tied_weights": tied, "tied_weights_deduplicated": False}
    remove_duplicate_weights_from_tied_info(
        onnx.load(str(onnx_path)), skeleton, tied, save_path=str(onnx_path)
    )
    return {"tied_weights": tied, "tied_weights_deduplicated": True}


def _tied_parameter_groups(model) -> list[list[str]]:
    """The names of each set of parameters that are one tensor (accelerate's
    find_tied_parameters, without accelerate in the TorchScript env that imports this module)."""
    names_by_tensor: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names_by_tensor.setdefault(id(parameter), []).append(name)
    return sorted(sorted(names) for names in names_by_tensor.values() if len(names) > 1)


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


def export_torchscript(model_dir: Path, out_dir: Path, provider: str) -> ExportInfo:
    """A traced KV-cache module (``model_kv.pt``: prefill and decode step, see ``kv_trace``) on
    ``provider``'s device; traced per device because a trace bakes in device placements.

    The saved trace is verified against the eager model at prompt and cache lengths it was not
    traced with; an architecture whose trace does not generalise fails its export with the reason
    (there is no fallback to a cache-less module).
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")

    def write(tmp_dir: Path) -> dict[str, Any]:
        import torch
        from transformers import AutoModelForCausalLM

        from .kv_trace import (
            TRACE_EXAMPLE_TOKENS,
            describe_cache,
            trace_kv_module,
            verify_kv_module,
        )

        device = torch_device_for(provider)
        architecture = architecture_of(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        model.to(device).eval()
        traced = trace_kv_module(model, architecture, device)
        torch.jit.save(traced, str(tmp_dir / TORCHSCRIPT_FILE))
        # Verify what the engine will load, not the in-memory trace.
        saved = torch.jit.load(str(tmp_dir / TORCHSCRIPT_FILE), map_location=device)
        verification = verify_kv_module(saved, model, architecture, device)
        model.config.save_pretrained(tmp_dir)
        model.generation_config.save_pretrained(tmp_dir)
        return {
            "file": TORCHSCRIPT_FILE,
            "format": TORCHSCRIPT_FORMAT,
            "kv_cache": True,
            "methods": ["forward (prefill)", "decode"],
            "device": str(device),
            "dtype": "float32",
            "trace_example_tokens": TRACE_EXAMPLE_TOKENS,
            "verified_prompt_tokens": list(verification.prompt_tokens),
            "verified_decode_steps": verification.decode_steps,
            "verified_max_abs_logit_diff": verification.max_abs_logit_diff,
            "verified_noise_floor_logit_diff": verification.noise_floor_logit_diff,
            **describe_cache(verification),
        }

    return _atomic_export("torchscript", model_dir, out_dir, provider, write)
