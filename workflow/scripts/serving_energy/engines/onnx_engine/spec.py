"""ONNX Runtime through optimum: one fp32 graph with a KV cache, on the CPU or CUDA provider."""

from serving_energy.study.engine_spec import EngineSpec

SPEC = EngineSpec(
    id="onnx",
    label="ONNX",
    summary="ONNX Runtime (optimum's ORTModelForCausalLM), one KV-cache graph",
    providers=("cpu", "cuda"),
    engine_class="serving_energy.engines.onnx_engine.engine:OnnxEngine",
    exporter="serving_energy.engines.onnx_engine.export:export_onnx",
    export_env="export-onnx",
    # ONNX Runtime's GPU build cannot share an env with the CPU one.
    serving_envs={"cuda": "serve-onnx-cuda"},
    packages=("optimum", "optimum-onnx", "onnxruntime", "onnxruntime-gpu"),
    # Measured at 1.41 B and 2.65 B (issue 20): 121 s and 185 s; peaks 1.9 and 1.5 fp32 copies
    # (post-processing after the model is freed); optimum writes the graph once more before the
    # tied weights are deduplicated.
    export_seconds=(15.0, 75.0),
    export_weight_copies=2.0,
    export_transient_copies=1.0,
    # Measured: 25-26 s for 10.6 GB (the session builds its graph).
    load_bytes_per_s=0.4e9,
)
