"""The study's vocabulary (engines, providers, labels, order, exports, envs) and the schema agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from serving_energy.data.standins import ARCHITECTURES
from serving_energy.data.tokenizers_offline import TOKENIZER_KINDS
from serving_energy.engines.base import OPENVINO_INFERENCE_PRECISIONS
from serving_energy.study.layout import ResultsLayout
from serving_energy.study.vocabulary import (
    CONFIGURATION_IDS,
    CONFIGURATION_ORDER,
    CONFIGURATIONS,
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


def test_the_schemas_configurations_are_the_vocabularys():
    item = PROPERTIES["configurations"]["items"]["properties"]
    assert item["engine"]["enum"] == list(ENGINES)
    assert item["provider"]["enum"] == list(PROVIDERS)


def test_the_schemas_analysed_configurations_are_the_vocabularys():
    chosen = PROPERTIES["analysis"]["properties"]["configurations"]["properties"]
    for key in ("include", "exclude"):
        assert tuple(chosen[key]["items"]["enum"]) == CONFIGURATION_IDS


def test_the_schemas_standins_and_engine_settings_are_the_librarys():
    standin = SCHEMA["$defs"]["standin"]["properties"]
    assert tuple(standin["architecture"]["enum"]) == ARCHITECTURES
    assert tuple(standin["tokenizer"]["enum"]) == TOKENIZER_KINDS
    openvino = PROPERTIES["engines"]["properties"]["openvino"]["properties"]
    assert tuple(openvino["inference_precision"]["enum"]) == OPENVINO_INFERENCE_PRECISIONS
    # every engine with settings is an engine of the study
    assert set(PROPERTIES["engines"]["properties"]) <= set(ENGINES)


def test_labels_and_order_follow_the_paper():
    assert CONFIGURATION_ORDER == (
        "<TORCH, CPU>", "<ONNX, CPU>", "<OV, CPU>", "<JIT, CPU>",
        "<TORCH, CUDA>", "<ONNX, CUDA>", "<JIT, CUDA>",
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
    }
    assert EXPORTED_ENGINES == ("onnx", "openvino", "torchscript")
