"""ONNX Runtime's export: one fp32 graph with a KV cache, tied weights deduplicated where they fit."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from serving_energy.engines.export import ExportInfo, atomic_export


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

    return atomic_export("onnx", model_dir, out_dir, None, write)


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
