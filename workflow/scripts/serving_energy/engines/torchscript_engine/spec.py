"""TorchScript: a traced prefill and decode step over a KV cache, one trace per provider."""

from serving_energy.study.engine_spec import EngineSpec

SPEC = EngineSpec(
    id="torchscript",
    label="JIT",
    summary="TorchScript (torch.jit.trace of a prefill and a KV-cache decode step)",
    providers=("cpu", "cuda"),
    engine_class="serving_energy.engines.torchscript_engine.engine:TorchScriptEngine",
    exporter="serving_energy.engines.torchscript_engine.export:export_torchscript",
    # A trace bakes in the device it was traced on.
    export_per_provider=True,
    export_env="export-torch",
    packages=("torch", "transformers", "tokenizers"),
    # The trace and its verification: about a build and a reload; peaks 1.86 and 1.88 fp32
    # copies (the eager model and the reloaded trace).
    export_seconds=(6.0, 40.0),
    export_weight_copies=2.0,
    load_bytes_per_s=1.0e9,
)
