import pytest

from serving_energy.engines import EngineError, load_engine


def test_openvino_on_cuda_is_rejected(standin_dirs, artefact_dirs):
    with pytest.raises(ValueError, match="OpenVINO has no CUDA"):
        load_engine("openvino", "cuda", standin_dirs["gpt2"], artefact_dirs["gpt2", "openvino"], 1)


def test_unknown_engine_and_provider_are_named(tmp_path):
    with pytest.raises(ValueError, match="'tensorrt'"):
        load_engine("tensorrt", "cpu", tmp_path, tmp_path, 1)
    with pytest.raises(ValueError, match="'rocm'"):
        load_engine("torch", "rocm", tmp_path, None, 1)


def test_exported_engine_needs_its_artefact(standin_dirs, tmp_path):
    with pytest.raises(ValueError, match="exported artefact"):
        load_engine("onnx", "cpu", standin_dirs["gpt2"], None, 1)
    with pytest.raises(FileNotFoundError, match="no exported onnx artefact"):
        load_engine("onnx", "cpu", standin_dirs["gpt2"], tmp_path / "missing", 1)


def test_bad_thread_count(standin_dirs):
    with pytest.raises(ValueError, match="threads"):
        load_engine("torch", "cpu", standin_dirs["gpt2"], None, 0)


def test_torchscript_trace_for_cpu_is_refused_on_cuda(standin_dirs, artefact_dirs):
    with pytest.raises(EngineError, match="traced for provider 'cpu'"):
        load_engine(
            "torchscript", "cuda", standin_dirs["gpt2"], artefact_dirs["gpt2", "torchscript"], 1
        )
