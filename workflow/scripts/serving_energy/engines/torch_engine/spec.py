"""PyTorch eager through transformers: the study's baseline and the equivalence check's reference."""

from serving_energy.study.engine_spec import EngineSpec

SPEC = EngineSpec(
    id="torch",
    label="TORCH",
    summary="PyTorch eager (transformers' generate), the model folder itself",
    providers=("cpu", "cuda"),
    reference=True,
    engine_class="serving_energy.engines.torch_engine.engine:TorchEngine",
    packages=("torch", "transformers", "tokenizers"),
    # Measured: 5 s for 10.6 GB of safetensors (memory-mapped).
    load_bytes_per_s=2.0e9,
)
