"""How much memory a job that holds a model needs, known before anything is built or downloaded.

Measured at the paper's scale (docs/paper-scale.md, FACTS.md): an fp32 model of 2.65 B parameters
is 10.6 GB; its ONNX export peaked at 11.4 GB, each check and run held about 10.5 GB. So a job's
need is a multiple of the fp32 weights plus the interpreter and libraries. The multiples below
are per stage and err high: a job that declares its need lets Snakemake never start jobs that do
not fit together, and a job that cannot fit the machine at all fails at once, naming the need,
instead of being killed by the kernel an hour in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from serving_energy.study.vocabulary import ENGINE_SPECS, EXPORTED_ENGINES

BYTES_PER_FP32 = 4
GPT2_VOCAB_SIZE = 50257
# data/tokenizers_offline's default (not imported: it loads transformers, and the workflow's
# planning imports this module; tests/test_footprint.py checks they agree).
DEFAULT_BPE_VOCAB_SIZE = 4096
# Python, torch, transformers and an engine's runtime, before any weight (measured ~1 GB).
BASE_MB = 1500
# Copies of the fp32 weights a stage holds at its peak.
WEIGHT_COPIES = {
    # Measured in the paper-scale rehearsal (docs/paper-scale.md; peak resident memory of the
    # job's processes over the fp32 weights, after BASE_MB), rounded up:
    "build_standin": 1.2,  # 0.92 at phi-2 (2.78 B)
    # export_<engine>: the engine's spec (EngineSpec.export_weight_copies)
    # torch (the reference) and the engine side by side: ONNX Runtime 1.73 and TorchScript 1.79
    # at pythia-1.4b; OpenVINO's 2.72 counts the IR's memory-mapped weights, reclaimable pages
    "check_engine": 2.0,
    "measure": 1.2,  # one engine in the server: 0.8-1.8 (OpenVINO's mapped IR again the most)
}


def estimate_parameters(spec: Mapping[str, Any]) -> int:
    """Parameters of a resolved stand-in spec (``geometries.resolve_standin_spec``), counted from
    its shapes: within 1 % of the meta-device count for the twelve paper geometries."""
    hidden, layers, heads = spec["hidden_size"], spec["layers"], spec["heads"]
    kv_heads, head_dim = spec["kv_heads"], spec["head_dim"]
    # Without its own vocabulary a stand-in has its tokenizer's: GPT-2's, or the trained BPE's.
    vocab = spec["vocab_size"] or (
        GPT2_VOCAB_SIZE
        if spec.get("tokenizer") == "gpt2"
        else spec.get("tokenizer_vocab_size") or DEFAULT_BPE_VOCAB_SIZE
    )
    mlp_matrices = 3 if spec["architecture"] in ("llama", "gemma") else 2
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    per_layer = attention + mlp_matrices * hidden * spec["intermediate_size"]
    embeddings = vocab * hidden * (1 if spec["tied_embeddings"] else 2)
    learned_positions = spec["architecture"] in ("gpt2", "gpt_bigcode")
    positions = spec["max_positions"] * hidden if learned_positions else 0
    return layers * per_layer + embeddings + positions


def job_memory_mb(stage: str, parameters: int) -> int:
    """The memory (MB, 10^6 bytes) a ``stage`` job needs for a model of ``parameters``."""
    copies = stage_weight_copies(stage)
    if parameters < 0:
        raise ValueError(f"parameters must be >= 0, got {parameters}")
    weights_mb = parameters * BYTES_PER_FP32 / 1e6
    return int(BASE_MB + copies * weights_mb)


def export_stage(engine: str) -> str:
    """The stage name of an engine's export (its memory, its forecast): ``export_<engine>``."""
    return f"export_{engine}"


STAGES: tuple[str, ...] = (
    "build_standin",
    *(export_stage(engine) for engine in EXPORTED_ENGINES),
    "check_engine",
    "measure",
)


def stage_weight_copies(stage: str) -> float:
    """Copies of the fp32 weights a ``stage`` job holds at its peak."""
    if stage in WEIGHT_COPIES:
        return WEIGHT_COPIES[stage]
    for engine in EXPORTED_ENGINES:
        if stage == export_stage(engine):
            return ENGINE_SPECS[engine].export_weight_copies
    raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")


def check_fits(stage: str, need_mb: int, total_mb: int, what: str) -> None:
    """Raise MemoryError naming the need when a job cannot fit this machine's memory at all."""
    if need_mb > total_mb:
        raise MemoryError(
            f"{stage} of {what} needs about {need_mb / 1000:.1f} GB of memory and this machine "
            f"has {total_mb / 1000:.1f} GB: it cannot run here (a larger machine, a smaller "
            "precision, or another model)"
        )


def machine_memory_mb() -> int | None:
    """This machine's physical memory in MB (None where the OS does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e6)
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_machine(stage: str, need_mb: int | None, what: str) -> None:
    """``check_fits`` against this machine's total memory (a job's first step)."""
    total_mb = machine_memory_mb()
    if need_mb and total_mb:
        check_fits(stage, int(need_mb), total_mb, what)
