"""A synthetic runs table shaped like the merged one, for tests and the benchmark."""

from __future__ import annotations

import numpy as np
import polars as pl

from serving_energy.study.vocabulary import Configuration

ENGINES_BY_PROVIDER = {
    "cpu": ("torch", "onnx", "openvino", "torchscript"),
    "cuda": ("torch", "onnx", "torchscript"),
}
# Rough relative energy per engine, so configurations differ as in the paper.
ENGINE_FACTOR = {"torch": 1.0, "onnx": 0.45, "openvino": 0.6, "torchscript": 0.95}


def synthetic_runs(n_models: int = 12, n_reps: int = 10, seed: int = 0) -> pl.DataFrame:
    """One row per run: ``n_models`` models (sizes 1, 2, 3 in turn) x 7 configurations x reps."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    for model_index in range(n_models):
        size_category = model_index % 3 + 1
        base_energy = 2000.0 * size_category * rng.uniform(0.8, 1.2)
        for provider, engines in ENGINES_BY_PROVIDER.items():
            for engine in engines:
                scale = ENGINE_FACTOR[engine] * (0.3 if provider == "cuda" else 1.0)
                for rep in range(n_reps):
                    noise = rng.lognormal(0.0, 0.05)
                    duration = base_energy / 40.0 * scale * noise
                    energy_cpu = base_energy * scale * noise
                    is_cuda = provider == "cuda"
                    energy_gpu = energy_cpu * 0.8 * rng.lognormal(0.0, 0.05) if is_cuda else None
                    rows.append(
                        {
                            "model": f"model-{model_index:03d}",
                            "size_category": size_category,
                            "engine": engine,
                            "provider": provider,
                            "configuration": Configuration(engine, provider).label,
                            "rep": rep,
                            "energy_cpu_j": energy_cpu,
                            "energy_gpu_j": energy_gpu,
                            "energy_global_j": energy_cpu + (energy_gpu or 0.0),
                            "duration_s": duration,
                            "cpu_usage_pct": float(rng.normal(60, 5)),
                            "ram_usage_pct": float(rng.normal(30, 2)),
                            "gpu_usage_pct": float(rng.normal(40, 5)) if is_cuda else None,
                            "gpu_mem_util_pct": float(rng.normal(20, 3)) if is_cuda else None,
                            # Constant, as real GPU memory often is: must come out not testable.
                            "gpu_mem_used_pct": 12.5 if is_cuda else None,
                            "n_requests": 164,
                            "n_failed": 0,
                            "new_tokens": 164 * 32,
                        }
                    )
    return pl.DataFrame(rows)
