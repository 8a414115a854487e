"""OpenVINO's export: a stateful IR with a KV cache, fp32 weights unless told otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serving_energy.engines.export import ExportInfo, atomic_export


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

    return atomic_export("openvino", model_dir, out_dir, None, write)
