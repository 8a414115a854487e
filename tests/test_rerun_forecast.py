"""What the workflow says before it re-measures existing runs."""

from __future__ import annotations

import json
import os

from serving_energy.study.design import identity_changes, measurement_identity
from serving_energy.study.layout import RunKey
from serving_energy.study.rerun_forecast import forecast, summary
from tests.helpers import load_config

CONFIG = load_config("smoke.yaml")
SMOKE_TOKENS = CONFIG["generation"]["max_new_tokens"]
KEY = RunKey.of("tiny-gpt2", "onnx", "cpu", 1)


def identity(config=CONFIG) -> dict:
    defaults = {
        "threads": None,
        "generation": {"max_length": 128, **config["generation"]},
        "protocol": {"warmup_requests": 0, **config["protocol"]},
        "meters": config["meters"],
    }
    return measurement_identity({**config, **defaults}, "tiny-gpt2", "onnx", "cpu", 1)


def test_identity_leaves_out_what_does_not_change_a_measurement():
    config = {
        **CONFIG,
        "threads": None,
        "meters": {"netio": {"url": "http://x", "username": "u", "password": "secret"}},
        "generation": {"max_length": 128, "max_new_tokens": 8},
    }
    config["protocol"] = {**CONFIG["protocol"], "warmup_requests": 0, "host": "::1"}
    found = measurement_identity(config, "tiny-gpt2", "onnx", "cpu", "1")
    assert found["rep"] == 1 and found["threads"] is None
    assert "size_category" not in found["model"]
    assert set(found["protocol"]) == {
        "idle_before_s",
        "idle_after_s",
        "warmup_requests",
        "cooldown",
    }
    assert found["meters"]["netio"] == {"url": "http://x"}
    assert "run_order" not in json.dumps(found) and "targets" not in found


def test_identity_changes_name_each_leaf():
    old = {"a": {"b": 1, "c": 2}, "d": 3}
    new = {"a": {"b": 1, "c": 5}, "e": 4}
    assert identity_changes(old, new) == {"a.c": (2, 5), "d": (3, None), "e": (None, 4)}


def test_forecast_finds_changed_settings_and_a_newer_script(tmp_path):
    record = tmp_path / "run.json"
    record.write_text(json.dumps({"identity": identity()}))
    assert forecast([(KEY, record, identity())]) == []
    changed = json.loads(json.dumps(identity()))
    changed["generation"]["max_new_tokens"] = 16
    (found,) = forecast([(KEY, record, changed)])
    assert (
        found.cause == "settings"
        and f"generation.max_new_tokens: {SMOKE_TOKENS} -> 16" in found.detail
    )
    assert forecast([(KEY, record, changed)], compare_settings=False) == []
    script = tmp_path / "measure.py"
    script.write_text("")
    os.utime(record, (1, 1))
    (found,) = forecast([(KEY, record, identity())], script=script)
    assert found.cause == "code"
    assert forecast([(KEY, tmp_path / "missing.json", changed)], script=script) == []


def test_summary_says_how_many_why_and_how_to_keep_them(tmp_path):
    record = tmp_path / "run.json"
    record.write_text(json.dumps({"identity": identity()}))
    changed = json.loads(json.dumps(identity()))
    changed["generation"]["max_new_tokens"] = 16
    text = summary(forecast([(KEY, record, changed)]), total_existing=3)
    assert text.startswith("1 of 3 existing measured runs will be measured again")
    assert f"generation.max_new_tokens: {SMOKE_TOKENS} -> 16" in text
    assert "results/superseded/" in text and "--rerun-triggers" in text
    assert summary([], 3) is None
