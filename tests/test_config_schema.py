"""Command-line overrides coerced to the schema's types; schema problems as one line each."""

from __future__ import annotations

import pytest

from serving_energy.study.config_schema import (
    check_against_schema,
    coerce,
    fill_engine_defaults,
    load_schema,
    problems,
)
from serving_energy.study.vocabulary import ConfigError
from tests.helpers import REPO, load_config

SCHEMA = load_schema(REPO / "config" / "schema.yaml")


def test_text_becomes_the_type_the_schema_asks_for():
    config = {
        "generation": {"max_new_tokens": "400", "max_length": "128"},
        "analysis": {"alpha": "0.01"},
        "protocol": {"cooldown": {"adaptive": "false", "min_s": "1.5"}},
        "targets": {"repetitions": ["2", "3"], "models": ["123"]},
        "threads": "null",
        "study": {"name": "42"},
    }
    coerced = coerce(config, SCHEMA)
    assert coerced["generation"] == {"max_new_tokens": 400, "max_length": 128}
    assert coerced["analysis"]["alpha"] == 0.01
    assert coerced["protocol"]["cooldown"] == {"adaptive": False, "min_s": 1.5}
    assert coerced["targets"] == {"repetitions": [2, 3], "models": ["123"]}  # names stay text
    assert coerced["threads"] is None
    assert coerced["study"]["name"] == "42"  # a string where the schema wants one


def test_a_number_or_text_key_takes_a_number_and_keeps_a_path():
    number = coerce({"carbon": {"intensity_g_per_kwh": "250"}}, SCHEMA)
    path = coerce({"carbon": {"intensity_g_per_kwh": "config/intensity.csv"}}, SCHEMA)
    assert number["carbon"]["intensity_g_per_kwh"] == 250
    assert path["carbon"]["intensity_g_per_kwh"] == "config/intensity.csv"
    # a text-or-null key keeps its text, even one YAML would read as something else
    assert coerce({"meters": {"energibridge": {"binary": "1"}}}, SCHEMA) == {
        "meters": {"energibridge": {"binary": "1"}}
    }


def test_text_that_does_not_fit_is_left_for_validation_to_name():
    coerced = coerce({"generation": {"max_new_tokens": "lots"}}, SCHEMA)
    assert coerced["generation"]["max_new_tokens"] == "lots"


def test_refs_and_additional_properties_are_followed():
    config = {"models": {"m": {"size_category": "2", "standin": {"layers": "4"}}}}
    coerced = coerce(config, SCHEMA)
    assert coerced["models"]["m"]["size_category"] == 2
    assert coerced["models"]["m"]["standin"]["layers"] == 4


def test_problems_are_one_line_each_with_the_key_and_a_hint():
    config = load_config("smoke.yaml")
    config["protocol"]["idle_befor_s"] = 3
    config["meters"]["interval_s"] = 0
    config["cuda"] = {"policy": "sometimes"}
    found = problems(config, SCHEMA)
    assert found == [
        "cuda.policy: 'sometimes' is not one of: auto, require, skip",
        "meters.interval_s: 0 must be greater than 0",
        "protocol.idle_befor_s: unknown key; did you mean 'idle_before_s'? known keys here: "
        "cooldown, host, idle_after_s, idle_before_s, request_timeout_s, run_order, "
        "server_start_timeout_s, warmup_requests",
    ]


def test_long_values_are_shortened_in_messages():
    found = problems({**load_config("smoke.yaml"), "repetitions": "x" * 500}, SCHEMA)
    assert len(found) == 1 and len(found[0]) < 120


def test_check_against_schema_coerces_in_place_and_raises_with_every_problem():
    config = load_config("smoke.yaml")
    config["generation"] = {"max_new_tokens": "16"}
    check_against_schema(config, REPO / "config" / "schema.yaml")
    assert config["generation"]["max_new_tokens"] == 16
    config["repetitions"] = 0
    config["typo"] = 1
    with pytest.raises(ConfigError) as raised:
        check_against_schema(config, REPO / "config" / "schema.yaml")
    message = str(raised.value)
    assert "repetitions: 0 is below the minimum 1" in message
    assert "typo: unknown key" in message


def test_the_engines_options_are_checked_coerced_and_completed_from_their_plug_ins():
    """engines.<id> is each plug-in's options fragment: a bad value or key is one line naming
    it, --config text is coerced to it, and the defaults come from the options type."""
    config = load_config("smoke.yaml")
    config["engines"] = {"llama_cpp": {"weight_type": "q4"}, "openvino": {"precision": "f32"},
                         "tensorrt": {}}  # fmt: skip
    with pytest.raises(ConfigError) as raised:
        check_against_schema(config, REPO / "config" / "schema.yaml")
    message = str(raised.value)
    assert "engines.llama_cpp.weight_type: 'q4' is not one of: f32, f16, bf16, q8_0" in message
    assert (
        "engines.openvino.precision: unknown key; did you mean 'inference_precision'? "
        "known keys here: inference_precision"
    ) in message
    assert "engines.tensorrt: unknown key; known keys here: llama_cpp, openvino, torch_compile" in (
        message
    )

    config = load_config("smoke.yaml")
    config["engines"] = "{openvino: {inference_precision: bf16}}"  # as --config gives it
    check_against_schema(config, REPO / "config" / "schema.yaml")
    assert config["engines"] == {"openvino": {"inference_precision": "bf16"}}
    fill_engine_defaults(config)
    assert config["engines"] == {
        "openvino": {"inference_precision": "bf16"},
        "torch_compile": {"mode": "default"},
        "llama_cpp": {"weight_type": "f32"},
    }
