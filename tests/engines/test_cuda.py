"""CUDA paths. GPU tests skip with a reason where no GPU is present; they are never faked.

Without a GPU, the error paths are tested instead: a CUDA configuration must fail loudly, never
fall back to the CPU.
"""

import pytest
import torch

from serving_energy.engines import EngineError, load_engine
from serving_energy.engines.export import ExportError
from serving_energy.engines.torchscript_engine.export import export_torchscript

from .conftest import NEW_TOKENS, PROMPTS


def ort_has_cuda() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device: torch.cuda.is_available() is False"
)


def gpu_test(function):
    """Marked ``gpu`` (select with -m gpu) and skipped with a reason where torch sees no GPU."""
    return pytest.mark.gpu(needs_cuda(function))


needs_no_cuda = pytest.mark.skipif(
    torch.cuda.is_available(), reason="a CUDA device is present: the no-GPU error path cannot occur"
)
needs_ort_cuda = pytest.mark.skipif(
    not ort_has_cuda(), reason="onnxruntime has no CUDAExecutionProvider in this environment"
)


@pytest.fixture(scope="module")
def cpu_ids(engines):
    return [engines("llama", "torch").generate(p, NEW_TOKENS).new_token_ids for p in PROMPTS]


@gpu_test
def test_torch_cuda_runs_on_the_gpu(standin_dirs, cpu_ids):
    engine = load_engine("torch", "cuda", standin_dirs["llama"], None, 1)
    assert engine.info().device.startswith("cuda")
    assert [engine.generate(p, NEW_TOKENS).new_token_ids for p in PROMPTS] == cpu_ids


@gpu_test
def test_torch_cuda_computes_in_fp32_without_tf32(standin_dirs):
    torch.backends.cuda.matmul.allow_tf32 = True  # as another library in the process might
    engine = load_engine("torch", "cuda", standin_dirs["llama"], None, 1)
    info = engine.info()
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is False
    assert info.compute_precision == "f32"
    assert info.precision_settings["cuda_matmul_allow_tf32"] is False
    assert info.precision_settings["cudnn_allow_tf32"] is False
    assert info.precision_settings["float32_matmul_precision"] == "highest"


@gpu_test
def test_torchscript_cuda_is_traced_on_the_gpu(standin_dirs, tmp_path, cpu_ids):
    info = export_torchscript(standin_dirs["llama"], tmp_path / "ts-cuda", "cuda")
    assert info.provider == "cuda" and info.details["device"].startswith("cuda")
    assert info.details["kv_cache"] is True
    engine = load_engine("torchscript", "cuda", standin_dirs["llama"], tmp_path / "ts-cuda", 1)
    engine_info = engine.info()
    assert engine_info.device.startswith("cuda")
    assert engine_info.compute_precision == "f32"
    assert engine_info.precision_settings["cuda_matmul_allow_tf32"] is False
    assert [engine.generate(p, NEW_TOKENS).new_token_ids for p in PROMPTS] == cpu_ids


@gpu_test
@needs_ort_cuda
def test_onnx_cuda_uses_the_cuda_provider_with_io_binding(standin_dirs, artefact_dirs, cpu_ids):
    engine = load_engine("onnx", "cuda", standin_dirs["llama"], artefact_dirs["llama", "onnx"], 1)
    info = engine.info()
    assert info.ort_providers[0] == "CUDAExecutionProvider"
    assert info.details["use_io_binding"] is True
    assert [engine.generate(p, NEW_TOKENS).new_token_ids for p in PROMPTS] == cpu_ids


@gpu_test
@needs_ort_cuda
def test_onnx_cuda_runs_without_tf32(standin_dirs, artefact_dirs):
    engine = load_engine("onnx", "cuda", standin_dirs["llama"], artefact_dirs["llama", "onnx"], 1)
    info = engine.info()
    assert engine.cuda_use_tf32() == "0"
    assert info.precision_settings["cuda_use_tf32"] == "0"
    assert info.precision_settings["use_io_binding"] is True
    assert info.compute_precision == "f32"


@gpu_test
def test_torch_compile_cuda_runs_on_the_gpu_in_fp32_without_recompiling(standin_dirs, cpu_ids):
    from serving_energy.engines.torch_compile_engine.engine import compiled_graph_count

    torch.backends.cuda.matmul.allow_tf32 = True  # as another library in the process might
    engine = load_engine("torch_compile", "cuda", standin_dirs["llama"], None, 1)
    engine.prepare_for(64)
    info = engine.info()
    assert info.device.startswith("cuda") and info.compute_precision == "f32"
    assert info.precision_settings["cuda_matmul_allow_tf32"] is False
    before = compiled_graph_count()
    assert [engine.generate(p, NEW_TOKENS).new_token_ids for p in PROMPTS] == cpu_ids
    assert compiled_graph_count() == before, "a new prompt length recompiled the decode step"
    assert engine.info().details["compilations_after_load"] == 0


def llama_cpp_has_gpu_offload() -> bool:
    from serving_energy.engines.llama_cpp_engine.engine import gpu_offload_supported

    return gpu_offload_supported()


@gpu_test
@pytest.mark.skipif(
    not llama_cpp_has_gpu_offload(),
    reason="this llama-cpp-python build has no GPU offload (build it with "
    "CMAKE_ARGS=-DGGML_CUDA=on)",
)
def test_llama_cpp_cuda_offloads_every_layer_and_passes_the_check(standin_dirs, artefact_dirs):
    from serving_energy.engines.equivalence import check_equivalence

    artefact = artefact_dirs["gpt2", "llama_cpp"]
    engine = load_engine("llama_cpp", "cuda", standin_dirs["gpt2"], artefact, 1)
    info = engine.info()
    assert info.device.startswith("cuda") and info.compute_precision == "f32"
    assert info.details["gpu_offload_supported"] is True
    assert info.precision_settings["n_gpu_layers"] > 0
    reference = load_engine("torch", "cpu", standin_dirs["gpt2"], None, 1)
    assert check_equivalence(engine, reference, PROMPTS, NEW_TOKENS).passed


@gpu_test
def test_cuda_read_bandwidth_is_measured_on_the_gpu():
    from serving_energy.meters.roofline import measure_cuda_read_bandwidth

    measurement = measure_cuda_read_bandwidth(repeats=5)
    assert measurement.device.startswith("cuda") and measurement.threads is None
    assert measurement.buffer_bytes >= 4 * (measurement.last_level_cache_bytes or 0)
    assert measurement.read_bandwidth_gb_s > 0


@needs_no_cuda
def test_torch_cuda_without_gpu_fails_loudly(standin_dirs):
    with pytest.raises(EngineError, match="no CUDA device"):
        load_engine("torch", "cuda", standin_dirs["gpt2"], None, 1)


@needs_no_cuda
def test_torch_compile_cuda_without_gpu_fails_loudly(standin_dirs):
    with pytest.raises(EngineError, match="no CUDA device"):
        load_engine("torch_compile", "cuda", standin_dirs["gpt2"], None, 1)


@needs_no_cuda
def test_torchscript_cuda_export_without_gpu_fails_and_names_the_target(standin_dirs, tmp_path):
    with pytest.raises(ExportError, match=r"torchscript \(cuda\).*no CUDA device"):
        export_torchscript(standin_dirs["gpt2"], tmp_path / "ts-cuda", "cuda")
    assert not (tmp_path / "ts-cuda").exists()


@pytest.mark.skipif(ort_has_cuda(), reason="onnxruntime here has a CUDAExecutionProvider")
def test_onnx_cuda_without_cuda_provider_fails_loudly(standin_dirs, artefact_dirs):
    with pytest.raises(EngineError, match="no CUDAExecutionProvider"):
        load_engine("onnx", "cuda", standin_dirs["gpt2"], artefact_dirs["gpt2", "onnx"], 1)
