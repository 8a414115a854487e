"""The study's vocabulary (engines, providers, labels, order, exports, envs) and the schema agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from serving_energy.data.standins import ARCHITECTURES
from serving_energy.data.tokenizers_offline import TOKENIZER_KINDS
from serving_energy.engines.openvino_engine.spec import INFERENCE_PRECISIONS
from serving_energy.study.config_schema import study_schema
from serving_energy.study.engine_spec import EngineSpec
from serving_energy.study.layout import ResultsLayout, export_artefacts, parse_export_artefact
from serving_energy.study.vocabulary import (
    CONFIGURATION_IDS,
    CONFIGURATION_ORDER,
    CONFIGURATIONS,
    ENGINE_SPECS,
    ENGINES,
    EXPORTED_ENGINES,
    IMPOSSIBLE,
    PROVIDERS,
    ConfigError,
    Configuration,
    baseline_label,
    order_configurations,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
PROPERTIES = SCHEMA["properties"]


def test_the_schema_leaves_engines_to_the_plug_ins():
    """The schema lists no engine: a new engine is a plug-in folder, and study/design.py checks
    engine and configuration ids against the plug-ins (tests/test_study.py)."""
    item = PROPERTIES["configurations"]["items"]["properties"]
    assert "enum" not in item["engine"]
    assert item["provider"]["enum"] == list(PROVIDERS)
    chosen = PROPERTIES["analysis"]["properties"]["configurations"]["properties"]
    for key in ("include", "exclude"):
        assert "enum" not in chosen[key]["items"]


def test_the_schemas_standins_and_engine_settings_are_the_librarys():
    standin = SCHEMA["$defs"]["standin"]["properties"]
    assert tuple(standin["architecture"]["enum"]) == ARCHITECTURES
    assert tuple(standin["tokenizer"]["enum"]) == TOKENIZER_KINDS
    # config/schema.yaml lists no engine's options: each plug-in's options type is its fragment
    assert "properties" not in PROPERTIES["engines"]
    engines = study_schema(REPO / "config" / "schema.yaml")["properties"]["engines"]
    assert set(engines["properties"]) == {e for e, s in ENGINE_SPECS.items() if s.options}
    assert engines["additionalProperties"] is False
    openvino = engines["properties"]["openvino"]["properties"]
    assert tuple(openvino["inference_precision"]["enum"]) == INFERENCE_PRECISIONS


def test_labels_and_order_follow_the_paper():
    # the paper's four, then the engines of 2026 (not in the paper's study)
    assert CONFIGURATION_ORDER == (
        "<TORCH, CPU>", "<ONNX, CPU>", "<OV, CPU>", "<JIT, CPU>", "<COMPILE, CPU>",
        "<LLAMA.CPP, CPU>",
        "<TORCH, CUDA>", "<ONNX, CUDA>", "<JIT, CUDA>", "<COMPILE, CUDA>", "<LLAMA.CPP, CUDA>",
    )  # fmt: skip
    assert CONFIGURATION_IDS[:4] == ("torch-cpu", "onnx-cpu", "openvino-cpu", "torchscript-cpu")
    assert baseline_label("cuda") == "<TORCH, CUDA>"
    assert order_configurations(["<X, CPU>", "<JIT, CUDA>", "<TORCH, CPU>", "<JIT, CUDA>"]) == [
        "<TORCH, CPU>",
        "<JIT, CUDA>",
        "<X, CPU>",
    ]


def test_every_id_names_its_configuration():
    for configuration in CONFIGURATIONS:
        assert Configuration.from_id(configuration.id) == configuration
    assert len(set(CONFIGURATION_ORDER)) == len(CONFIGURATIONS)


@pytest.mark.parametrize("engine_provider", sorted(IMPOSSIBLE))
def test_what_does_not_exist_is_refused_with_the_reason(engine_provider):
    with pytest.raises(ConfigError, match="does not exist: OpenVINO has no CUDA execution"):
        Configuration(*engine_provider)
    assert all((c.engine, c.provider) not in IMPOSSIBLE for c in CONFIGURATIONS)


@pytest.mark.parametrize(("engine", "provider"), [("tensorrt", "cpu"), ("onnx", "rocm")])
def test_unknown_names_are_refused_naming_the_choices(engine, provider):
    with pytest.raises(ConfigError, match="choose one of"):
        Configuration(engine, provider)


def test_every_configuration_has_an_env_and_its_export_folder():
    for configuration in CONFIGURATIONS:
        assert (REPO / "envs" / f"{configuration.serving_env}.yaml").is_file()
    layout = ResultsLayout(Path("results"))
    folders = {c.id: layout.export_dir("m", c) for c in CONFIGURATIONS if c.provider == "cpu"} | {
        "torchscript-cuda": layout.export_dir("m", Configuration("torchscript", "cuda"))
    }
    assert folders == {
        "torch-cpu": None,
        "onnx-cpu": Path("results/engines/m/onnx"),
        "openvino-cpu": Path("results/engines/m/openvino"),
        "torchscript-cpu": Path("results/engines/m/torchscript/cpu"),
        "torchscript-cuda": Path("results/engines/m/torchscript/cuda"),
        "torch_compile-cpu": None,  # loads the model folder itself
        "llama_cpp-cpu": Path("results/engines/m/llama_cpp"),
    }
    assert EXPORTED_ENGINES == ("onnx", "openvino", "torchscript", "llama_cpp")


def test_export_artefacts_name_each_export_folder():
    assert export_artefacts() == (
        "onnx", "openvino", "torchscript/cpu", "llama_cpp", "torchscript/cuda",
    )  # fmt: skip
    assert parse_export_artefact("torchscript/cuda") == ("torchscript", "cuda")
    assert parse_export_artefact("onnx") == ("onnx", None)
    with pytest.raises(ValueError, match="no export 'openvino/cuda'; the exports are onnx"):
        parse_export_artefact("openvino/cuda")


@pytest.mark.parametrize("engine", ENGINES)
def test_each_plug_in_names_what_exists(engine):
    """Every module path, env and package a spec names is real: a typo in a new plug-in fails
    here, not in the first job that loads it."""
    from importlib import metadata

    from serving_energy.engines.base import Engine
    from serving_energy.engines.registry import resolve

    spec = ENGINE_SPECS[engine]
    assert issubclass(resolve(spec.engine_class), Engine)
    assert resolve(spec.engine_class).name == engine
    if spec.exported:
        assert callable(resolve(spec.exporter))
        assert (REPO / "envs" / f"{spec.export_env}.yaml").is_file()
    for provider in spec.providers:
        assert (REPO / "envs" / f"{spec.serving_env(provider)}.yaml").is_file()
    installed = {d.metadata["Name"].lower().replace("_", "-") for d in metadata.distributions()}
    # onnxruntime-gpu is recorded where it is installed (the CUDA env), never here
    assert {p for p in spec.packages if p != "onnxruntime-gpu"} <= installed
    assert spec.make_options() is None or spec.make_options() == spec.options()


def test_a_spec_that_cannot_be_right_is_refused_at_once():
    with pytest.raises(ValueError, match="lowercase"):
        EngineSpec(id="Llama-CPP", label="L", providers=("cpu",), engine_class="m:C")
    with pytest.raises(ValueError, match="no export_env"):
        EngineSpec(id="x", label="X", providers=("cpu",), engine_class="m:C", exporter="m:e")
    with pytest.raises(ValueError, match="runs on no provider"):
        EngineSpec(id="x", label="X", providers=(), engine_class="m:C")
