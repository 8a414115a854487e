"""llama.cpp's export: the model folder converted to one GGUF file by llama.cpp's own converter."""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from serving_energy.data.standins import read_standin_info
from serving_energy.engines.export import ExportError, ExportInfo, atomic_export
from serving_energy.engines.llama_cpp_engine.converter import (
    CONVERTER_SCRIPT,
    converter_dir,
    runtime_version,
)
from serving_energy.engines.llama_cpp_engine.spec import GGUF_FILE, SPEC, LlamaCppOptions

# Copied beside the GGUF, as the other exports carry them (the tokenizer comes with every export).
_METADATA_FILES = ("config.json", "generation_config.json")
_TAIL_LINES = 25


class ConversionFailed(RuntimeError):
    """The converter exited with an error; the message holds its reason and last lines."""


def export_gguf(model_dir: Path, out_dir: Path, weight_type: str = "f32") -> ExportInfo:
    """``model.gguf`` at ``weight_type`` (f32, f16, bf16 or q8_0), beside the tokenizer files.

    Only the GGUF's weights are used to decode: the engine feeds the transformers tokenizer's ids
    (as every engine of the study does), so the GGUF's own vocabulary decides nothing. The converter
    still insists on knowing the tokenizer; one it does not know fails the export with its reason.
    """
    LlamaCppOptions(weight_type)  # checks the name
    standin = read_standin_info(Path(model_dir))
    why = standin and SPEC.standin_problem(standin["architecture"], standin["tokenizer"])
    if why:
        raise ExportError(f"cannot export {model_dir} to llama_cpp: {why}")
    version = runtime_version()
    converter = converter_dir(version)

    def write(tmp_dir: Path) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(dir=tmp_dir.parent, prefix=".gguf-source-") as staging:
            source, amended = _staged_source(Path(model_dir), Path(staging))
            _convert(converter, source, tmp_dir / GGUF_FILE, weight_type)
        for name in _METADATA_FILES:
            if (Path(model_dir) / name).is_file():
                shutil.copy2(Path(model_dir) / name, tmp_dir / name)
        return {
            "gguf_file": GGUF_FILE,
            "weight_type": weight_type,
            "converter": f"llama-cpp-python=={version}: vendor/llama.cpp/{CONVERTER_SCRIPT}",
            "config_fields_added": amended,
        }

    return atomic_export("llama_cpp", model_dir, out_dir, None, write)


def _staged_source(model_dir: Path, staging: Path) -> tuple[Path, dict[str, Any]]:
    """The model folder as the converter reads it: links to its files and a config.json with the
    fields the converter requires but newer transformers no longer write (GPT-2's ``n_ctx``)."""
    config = json.loads((model_dir / "config.json").read_text())
    amended: dict[str, Any] = {}
    if config.get("model_type") == "gpt2" and "n_ctx" not in config and "n_positions" in config:
        amended["n_ctx"] = config["n_positions"]
    if not amended:
        return model_dir, {}
    for entry in model_dir.iterdir():
        if entry.name != "config.json":
            os.symlink(entry.resolve(), staging / entry.name)
    (staging / "config.json").write_text(json.dumps({**config, **amended}, indent=2) + "\n")
    return staging, amended


def _convert(converter: Path, source: Path, gguf: Path, weight_type: str) -> None:
    """Run the converter, its output streamed into this job's log (a 3 B model takes minutes)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(converter), str(converter / "gguf-py"), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    command = [
        sys.executable, str(converter / CONVERTER_SCRIPT), str(source),
        "--outtype", weight_type, "--outfile", str(gguf),
    ]  # fmt: skip
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stderr.write(line)
            tail.append(line.rstrip())
    if process.returncode != 0 or not gguf.is_file():
        raise ConversionFailed(_reason(tail, process.returncode))


def _reason(tail: collections.deque[str], returncode: int) -> str:
    text = "\n".join(tail)
    if "pre-tokenizer was not recognized" in text:
        why = (
            "llama.cpp's converter does not know this model's tokenizer (its pre-tokenizer hash "
            "is not in convert_hf_to_gguf's list); a stand-in converts with `tokenizer: gpt2`"
        )
    elif "tokenizer.model" in text and "not found" in text.lower():
        why = (
            "llama.cpp's converter needs this architecture's SentencePiece tokenizer.model, "
            "which the model folder lacks"
        )
    else:
        last = next((line for line in reversed(tail) if line.strip()), "")
        why = f"llama.cpp's converter exited with status {returncode}: {last}"
    return f"{why}\n--- converter output (last lines) ---\n{text}"
