"""Every engine computes at a recorded precision; OpenVINO's is a configuration choice."""

import json

import pytest

from serving_energy.engines import load_engine
from serving_energy.study.vocabulary import ENGINES

from .conftest import PROMPTS, THREADS


def cpu_has_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


needs_bf16 = pytest.mark.skipif(
    not cpu_has_bf16(), reason="this CPU has no bf16 support (OpenVINO lists no BF16 capability)"
)


@pytest.fixture(scope="module")
def load_openvino(standin_dirs, artefact_dirs):
    def load(precision: str):
        return load_engine(
            "openvino",
            "cpu",
            standin_dirs["llama"],
            artefact_dirs["llama", "openvino"],
            THREADS,
            {"inference_precision": precision},
        )

    return load


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_records_fp32_and_its_precision_settings(engine, engines):
    info = engines("phi", engine).info()
    assert info.compute_precision == "f32"
    settings = info.precision_settings
    assert settings["threads"] == THREADS
    if engine in ("torch", "torchscript"):
        assert settings["dtype"] == "float32"
        assert settings["cuda_matmul_allow_tf32"] is False
        assert settings["cudnn_allow_tf32"] is False
        assert settings["float32_matmul_precision"] == "highest"
    if engine == "onnx":
        assert settings["dtype"] == "tensor(float)"
        assert settings["graph_optimization_level"].endswith("ORT_ENABLE_ALL")
        assert settings["use_io_binding"] is False
        assert settings["intra_op_num_threads"] == THREADS
    if engine == "openvino":
        assert settings["inference_precision_option"] == "f32"
        assert settings["inference_precision_hint"] == "f32"
        assert settings["kv_cache_precision"] == "f32"
        assert settings["weight_format"] == "fp32"


def test_torch_engines_undo_a_tf32_setting_made_before_them(standin_dirs):
    """The CUDA TF32 switches are process-wide: an engine sets them, it does not assume them."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    try:
        engine = load_engine("torch", "cpu", standin_dirs["gpt2"], None, THREADS)
        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is False
        assert engine.info().precision_settings["cuda_matmul_allow_tf32"] is False
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


@needs_bf16
def test_openvino_bf16_is_used_when_asked_for(load_openvino):
    info = load_openvino("bf16").info()
    assert info.compute_precision == "bf16"
    assert info.precision_settings["inference_precision_hint"] == "bf16"
    assert info.precision_settings["kv_cache_precision"] == "bf16"
    assert info.details["ov_config"]["INFERENCE_PRECISION_HINT"] == "bf16"


def test_openvino_default_records_what_the_plugin_chose(load_openvino):
    import openvino as ov

    plugin_default = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
    info = load_openvino("default").info()
    assert "INFERENCE_PRECISION_HINT" not in info.details["ov_config"]
    assert "KV_CACHE_PRECISION" not in info.details["ov_config"]
    assert info.precision_settings["inference_precision_option"] == "default"
    assert info.compute_precision == plugin_default


def test_unknown_openvino_precision_and_option_are_named(standin_dirs, artefact_dirs):
    def load(options):
        return load_engine(
            "openvino", "cpu", standin_dirs["llama"], artefact_dirs["llama", "openvino"], 1, options
        )

    with pytest.raises(ValueError, match="inference_precision 'fp16'"):
        load({"inference_precision": "fp16"})
    with pytest.raises(ValueError, match="engine 'openvino' has no option precision"):
        load({"precision": "f32"})
    with pytest.raises(ValueError, match="engine 'onnx' has no option inference_precision"):
        load_engine("onnx", "cpu", standin_dirs["llama"], None, 1, {"inference_precision": "f32"})


def test_equivalence_check_runs_openvino_at_the_measured_precision(
    standin_dirs, artefact_dirs, tmp_path
):
    from serving_energy.engines.checks import check_configuration

    out = tmp_path / "check.json"
    result = check_configuration(
        model="gpt2-standin",
        engine="openvino",
        provider="cpu",
        model_dir=standin_dirs["gpt2"],
        artefact_dir=artefact_dirs["gpt2", "openvino"],
        prompts=list(PROMPTS[:1]),
        max_new_tokens=4,
        max_mismatched_tokens=0,
        threads=THREADS,
        out_path=out,
        options={"inference_precision": "default"},
    )
    saved = json.loads(out.read_text())
    assert (saved["model"], saved["engine"], saved["provider"]) == (
        "gpt2-standin",
        "openvino",
        "cpu",
    )
    assert saved["precision_settings"]["inference_precision_option"] == "default"
    assert saved["compute_precision"] == result.compute_precision


def test_server_passes_the_engine_options_through_as_one_mapping(tmp_path):
    from serving_energy.serving.server import parse_args
    from serving_energy.serving.server_process import ServerSpec

    spec = ServerSpec(
        model_name="m",
        model_dir=tmp_path,
        artefact_dir=tmp_path,
        engine="openvino",
        provider="cpu",
        threads=1,
        engine_options={"inference_precision": "default"},
    )
    # after: python -m serving_energy.serving.server
    argv = spec.command(tmp_path / "port.json")[3:]
    assert parse_args(argv).engine_options == {"inference_precision": "default"}
    flag = argv.index("--engine-options")
    without = argv[:flag] + argv[flag + 2 :]
    assert parse_args(without).engine_options == {}  # the engine's defaults: fp32
    for bad in ("not json", '["a list"]'):
        with pytest.raises(SystemExit):
            parse_args([*without, "--engine-options", bad])
