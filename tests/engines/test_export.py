import json

import pytest

from serving_energy.engines.export import EXPORT_FILE, ExportError, export_model
from serving_energy.study.vocabulary import ENGINE_SPECS

from .conftest import EXPORTED_ENGINES, cpu_export


@pytest.mark.parametrize("engine", EXPORTED_ENGINES)
def test_artefacts_are_self_contained_and_described(engine, artefact_dirs, standin_dirs):
    artefact = artefact_dirs["gpt_bigcode", engine]
    info = json.loads((artefact / EXPORT_FILE).read_text())
    assert info["engine"] == engine
    assert info["provider"] == ("cpu" if ENGINE_SPECS[engine].export_per_provider else None)
    assert info["architecture"] == "gpt_bigcode"
    assert info["duration_s"] > 0 and info["size_bytes"] > 100_000
    assert info["standin"] is True
    assert info["library_versions"]["transformers"] == "4.57.6"
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "standin.json"):
        assert (artefact / name).is_file(), name
    graph = {
        "onnx": "model.onnx",
        "openvino": "openvino_model.xml",
        "torchscript": "model_kv.pt",
        "llama_cpp": "model.gguf",
    }
    assert (artefact / graph[engine]).is_file()
    assert not list(artefact.parent.glob(".*partial*"))


def test_openvino_weights_stay_fp32(artefact_dirs):
    import openvino as ov

    model = ov.Core().read_model(artefact_dirs["llama", "openvino"] / "openvino_model.xml")
    weight_types = {
        op.get_element_type().get_type_name()
        for op in model.get_ops()
        if op.get_type_name() == "Constant" and op.shape and len(op.shape) == 2
    }
    assert "f32" in weight_types
    assert not weight_types & {"u8", "i8", "u4", "i4", "f16", "bf16"}


def test_openvino_export_has_a_kv_cache_state(artefact_dirs):
    import openvino as ov

    model = ov.Core().read_model(artefact_dirs["gpt2", "openvino"] / "openvino_model.xml")
    assert model.get_sinks(), "a stateful IR keeps its KV cache in ReadValue/Assign state"


def test_onnx_export_has_kv_cache_inputs(artefact_dirs):
    import onnx

    graph = onnx.load(artefact_dirs["gpt2", "onnx"] / "model.onnx", load_external_data=False).graph
    assert any(i.name.startswith("past_key_values") for i in graph.input)


@pytest.mark.parametrize("name", EXPORTED_ENGINES)
def test_failed_export_leaves_nothing_complete_looking(name, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "no_such_arch"}))
    out_dir = tmp_path / "out" / name
    with pytest.raises(ExportError) as raised:
        cpu_export(name, broken, out_dir)
    message = str(raised.value)
    assert str(broken) in message and "no_such_arch" in message and name in message
    assert not out_dir.exists()
    assert not list((tmp_path / "out").iterdir())


def test_failed_reexport_keeps_the_previous_complete_export(tmp_path, standin_dirs):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(standin_dirs["gpt2"], model)
    out_dir = tmp_path / "ts"
    cpu_export("torchscript", model, out_dir)
    (model / "model.safetensors").unlink()
    with pytest.raises(ExportError):
        cpu_export("torchscript", model, out_dir)
    assert (out_dir / EXPORT_FILE).is_file() and (out_dir / "model_kv.pt").is_file()


def test_unknown_provider_and_weight_format(tmp_path, standin_dirs):
    with pytest.raises(ValueError, match="'tpu'"):
        export_model("torchscript", standin_dirs["gpt2"], tmp_path / "x", "tpu")
    with pytest.raises(ValueError, match="'int3'"):
        cpu_export("openvino", standin_dirs["gpt2"], tmp_path / "y", weight_format="int3")


def test_export_asks_for_a_provider_only_where_the_artefact_is_per_provider(tmp_path, standin_dirs):
    with pytest.raises(ValueError, match="serves every provider"):
        export_model("onnx", standin_dirs["gpt2"], tmp_path / "x", "cpu")
    with pytest.raises(ValueError, match="exports per provider"):
        export_model("torchscript", standin_dirs["gpt2"], tmp_path / "x", None)
    with pytest.raises(ValueError, match="no export"):
        export_model("torch", standin_dirs["gpt2"], tmp_path / "x")
    with pytest.raises(ValueError, match="unknown engine 'tpu_rt'"):
        export_model("tpu_rt", standin_dirs["gpt2"], tmp_path / "x")
