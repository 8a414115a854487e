"""One measured run through the real server: a server killed mid-run fails the run and leaves no
complete-looking output (its data go to the failure folder); the rerun succeeds, atomically."""

from __future__ import annotations

import json
import signal
import threading
import time

import polars as pl
import psutil
import pytest

import serving_energy.serving.protocol as protocol
from serving_energy.meters import Timeline
from serving_energy.serving.protocol import RunFailed, RunInputs, RunLogs, measure_run
from serving_energy.serving.run_record import RunRecord
from serving_energy.serving.run_settings import RunSettings
from serving_energy.study.layout import RUN_FILES, ResultsLayout, RunKey

from .fakes import MODEL, prompts, wait_until

N_PROMPTS = 40
KILL_AFTER_REQUESTS = 2
KEY = RunKey.of(MODEL, "torch", "cpu", 1)


def identity(max_new_tokens: int = 4) -> dict:
    """The shape study.measurement_identity gives the measure rule, at tiny, fast values."""
    return {
        "model": {"alias": MODEL, "standin": {"architecture": "gpt2"}},
        "engine": "torch",
        "provider": "cpu",
        "rep": 1,
        "threads": 1,
        "generation": {"max_length": 128, "max_new_tokens": max_new_tokens},
        "protocol": {
            "idle_before_s": 0.2,
            "idle_after_s": 0.2,
            "warmup_requests": 0,
            "cooldown": {"min_s": 0, "adaptive": False},
        },
        "meters": {"interval_s": 0.1, "cpu_estimate": {"enabled": True, "tdp_w": 65.0}},
    }


OPERATION = {"request_timeout_s": 30, "server_start_timeout_s": 120, "host": "127.0.0.1"}
PROVENANCE = {"study": {"name": "serving-tests"}, "config_sha256": "0" * 64}


def settings(**kwargs) -> RunSettings:
    return RunSettings.from_identity(identity(**kwargs), OPERATION)


def measure(root, model_dir, n_prompts, **kwargs) -> RunRecord:
    layout = ResultsLayout(root)
    return measure_run(
        kwargs.pop("run_settings", None) or settings(),
        PROVENANCE,
        RunInputs(prompts(n_prompts), model_dir),
        layout,
        RunLogs(job_log=None, server_log=root / "logs" / "rep1.server.log"),
        progress=False,
        **kwargs,
    )


def server_children() -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if "serving_energy.serving.server" in " ".join(child.cmdline())
    ]


def test_killed_server_fails_the_run_then_the_rerun_succeeds(tiny_model, tmp_path, monkeypatch):
    layout = ResultsLayout(tmp_path)
    run_dir, failed_dir = layout.run_dir(KEY), layout.failed_dir(KEY)
    real_send_prompts = protocol.send_prompts
    done = threading.Event()
    killed = threading.Event()
    victims: list[int] = []

    def killer() -> None:
        # Another thread kills the server once the first requests are answered.
        if not done.wait(timeout=120):
            return
        for child in server_children():
            victims.append(child.pid)
            child.send_signal(signal.SIGKILL)
            # Not child.wait(): that would reap the server behind ServerProcess' back.
            wait_until(lambda c=child: not c.is_running() or c.status() == psutil.STATUS_ZOMBIE, 30)
        killed.set()

    def send_and_get_killed(base_url, prompts_, **kwargs):
        calls = {"n": 0}
        clock = kwargs.pop("clock", None) or time.monotonic

        def counting_clock() -> float:
            calls["n"] += 1
            if calls["n"] == 2 * KILL_AFTER_REQUESTS + 1:  # start of the request after them
                done.set()
                assert killed.wait(timeout=60), "the killer thread did not kill the server"
            return clock()

        return real_send_prompts(base_url, prompts_, clock=counting_clock, **kwargs)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    monkeypatch.setattr(protocol, "send_prompts", send_and_get_killed)
    with pytest.raises(RunFailed) as raised:
        measure(tmp_path, tiny_model, N_PROMPTS)
    thread.join(timeout=10)
    assert len(victims) == 1
    assert "exited with code -9 while serving" in str(raised.value)
    assert str(failed_dir) in str(raised.value)

    # Nothing that looks complete where the run belongs, no staging folder left beside it.
    assert not (run_dir / "run.json").exists()
    if run_dir.parent.exists():
        assert list(run_dir.parent.iterdir()) == []

    # The failure folder keeps what was measured, with the reason and this attempt's server log.
    (attempt,) = list(failed_dir.iterdir())
    assert sorted(p.name for p in attempt.iterdir()) == [
        "failure.json", "requests.parquet", "server.log", "timeline.parquet"
    ]  # fmt: skip
    failure = json.loads((attempt / "failure.json").read_text())
    assert failure["status"] == "failed"
    assert failure["model"] == MODEL and failure["configuration_id"] == "torch-cpu"
    assert failure["attempt"]["attempt_id"] == attempt.name
    assert "while serving" in failure["failure"]
    assert failure["n_requests"] == N_PROMPTS
    assert failure["n_failed"] == N_PROMPTS - KILL_AFTER_REQUESTS
    frame = pl.read_parquet(attempt / "requests.parquet")
    assert frame.height == N_PROMPTS
    assert frame["status"].to_list()[:KILL_AFTER_REQUESTS] == ["ok"] * KILL_AFTER_REQUESTS
    assert set(frame["status"].to_list()[KILL_AFTER_REQUESTS:]) == {"failed"}
    assert frame["error"][KILL_AFTER_REQUESTS].startswith("ConnectionError")
    timeline = Timeline.from_parquet(attempt / "timeline.parquet")
    assert timeline.phase_bounds("inference") is not None
    assert server_children() == []

    # The rerun (no kill) succeeds and writes the three files.
    monkeypatch.setattr(protocol, "send_prompts", real_send_prompts)
    run = measure(tmp_path, tiny_model, N_PROMPTS)
    assert run.status == "ok" and run.failure is None
    assert run.n_requests == N_PROMPTS and run.n_failed == 0
    assert run.new_tokens == 4 * N_PROMPTS
    assert run.device == "cpu"
    assert run.cooldown.settled is True
    assert run.metrics.global_.method
    assert sorted(p.name for p in run_dir.iterdir()) == sorted([*RUN_FILES, "server.log"])
    assert [p.name for p in run_dir.parent.iterdir()] == ["rep1"]  # no staging left
    assert [p.name for p in failed_dir.iterdir()] == [attempt.name]  # the success left no record
    written = json.loads((run_dir / "run.json").read_text())
    assert written["status"] == "ok" and written["n_requests"] == N_PROMPTS
    assert written["identity"] == identity() and written["threads_source"] == "config"
    requests_frame = pl.read_parquet(run_dir / "requests.parquet")
    assert requests_frame["status"].to_list() == ["ok"] * N_PROMPTS
    assert requests_frame["index"].to_list() == list(range(N_PROMPTS))
    starts = requests_frame["start_s"].to_list()
    assert starts == sorted(starts)
    timeline = Timeline.from_parquet(run_dir / "timeline.parquet")
    bounds = {
        phase: timeline.phase_bounds(phase)
        for phase in ("idle-before", "load", "inference", "stop", "idle-after")
    }
    assert all(bounds.values()), bounds
    order = [bounds[p] for p in ("idle-before", "load", "inference", "stop", "idle-after")]
    for earlier, later in zip(order, order[1:], strict=False):
        assert earlier[1] <= later[0]
    assert (
        bounds["inference"][0] <= starts[0]
        and requests_frame["end_s"][-1] <= bounds["inference"][1]
    )
    assert server_children() == []


def test_a_model_that_fails_to_load_fails_the_run_with_its_reason_and_keeps_the_data(tmp_path):
    """No inference window ever opens: the failure keeps the server's own message."""
    empty_model = tmp_path / "empty-model"
    empty_model.mkdir()
    layout = ResultsLayout(tmp_path)
    with pytest.raises(RunFailed, match=f"could not load model {MODEL} in engine torch"):
        measure(tmp_path, empty_model, 3)
    assert not layout.run_dir(KEY).exists()
    (attempt,) = layout.failed_dir(KEY).iterdir()
    failure = json.loads((attempt / "failure.json").read_text())
    assert failure["status"] == "failed" and failure["metrics"] == {}
    assert "could not load model" in failure["failure"]
    markers = Timeline.from_parquet(attempt / "timeline.parquet").markers
    assert {(m.phase, m.event) for m in markers} >= {("idle-before", "end"), ("load", "start")}
