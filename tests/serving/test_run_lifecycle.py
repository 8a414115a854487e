"""A run never loses a measurement: superseding, interruption and a killed job, through the real
server and protocol."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

import serving_energy.serving.protocol as protocol
from serving_energy.core.lifecycle import interruptible
from serving_energy.serving.protocol import RunInterrupted
from serving_energy.serving.run_settings import RunSettings
from serving_energy.study.layout import ResultsLayout

from .fakes import wait_until
from .test_protocol import KEY, OPERATION, identity, measure

REPO = Path(__file__).resolve().parents[2]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def servers_of(model_dir: Path) -> list[psutil.Process]:
    """Every model server on the machine serving ``model_dir`` (children or orphans)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "serving_energy.serving.server" in cmdline and str(model_dir) in cmdline:
            found.append(process)
    return found


def test_a_new_run_supersedes_the_old_one_which_is_kept_with_the_reason(tiny_model, tmp_path):
    layout = ResultsLayout(tmp_path)
    measure(tmp_path, tiny_model, 3)
    first = snapshot(layout.run_dir(KEY))
    changed = RunSettings.from_identity(identity(max_new_tokens=5), OPERATION)
    run = measure(tmp_path, tiny_model, 3, run_settings=changed)
    assert run.new_tokens == 15
    (kept,) = layout.superseded_dir(KEY).iterdir()
    record = json.loads((kept / "superseded.json").read_text())
    assert "generation.max_new_tokens: 4 -> 5" in record["reason"]
    assert record["changes"] == {"generation.max_new_tokens": [4, 5]}
    assert record["model"] == KEY.model and record["rep"] == KEY.rep
    # the old run, byte for byte, beside its record
    assert {name: data for name, data in snapshot(kept).items() if name != "superseded.json"} == (
        first
    )
    # the same settings again: superseded with the reason that says so
    measure(tmp_path, tiny_model, 3, run_settings=changed)
    reasons = sorted(
        json.loads((folder / "superseded.json").read_text())["reason"]
        for folder in layout.superseded_dir(KEY).iterdir()
    )
    assert len(reasons) == 2
    assert any(reason.startswith("measured again with the same settings") for reason in reasons)


def test_an_interrupted_run_keeps_its_data_and_the_previous_run(tiny_model, tmp_path, monkeypatch):
    layout = ResultsLayout(tmp_path)
    measure(tmp_path, tiny_model, 3)
    previous = snapshot(layout.run_dir(KEY))
    real_send_prompts = protocol.send_prompts

    def send_then_get_terminated(base_url, prompts_, **kwargs):
        if kwargs.get("first_index", 0) == 0:  # the inference window, not a warm-up
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return real_send_prompts(base_url, prompts_, **kwargs)

    monkeypatch.setattr(protocol, "send_prompts", send_then_get_terminated)
    with pytest.raises(RunInterrupted, match="interrupted: received SIGTERM"), interruptible():
        measure(tmp_path, tiny_model, 400)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    assert snapshot(layout.run_dir(KEY)) == previous
    (attempt,) = layout.failed_dir(KEY).iterdir()
    failure = json.loads((attempt / "failure.json").read_text())
    assert failure["status"] == "failed"
    assert failure["failure"] == "interrupted: received SIGTERM"
    assert {"requests.parquet", "timeline.parquet", "server.log"} <= set(snapshot(attempt))
    assert servers_of(tiny_model) == []


CHILD = """
import sys, time
sys.path.insert(0, {scripts!r})
sys.path.insert(0, {repo!r})
from pathlib import Path
import serving_energy.serving.protocol as protocol
from tests.serving.test_protocol import measure
real = protocol.send_prompts
def announce(base_url, prompts, **kwargs):
    print("inference", flush=True)
    return real(base_url, prompts, **kwargs)
protocol.send_prompts = announce
measure(Path({root!r}), Path({model!r}), 400)
"""


def test_a_killed_measure_job_takes_its_server_with_it(tiny_model, tmp_path):
    """SIGKILL mid-inference: the server dies too, and the attempt is recorded as unfinished."""
    layout = ResultsLayout(tmp_path)
    code = CHILD.format(
        scripts=str(REPO / "workflow" / "scripts"),
        repo=str(REPO),
        root=str(tmp_path),
        model=str(tiny_model),
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert child.stdout.readline().strip() == "inference"
        time.sleep(0.5)
        assert len(servers_of(tiny_model)) == 1
        child.kill()
        child.wait(timeout=30)
        wait_until(lambda: servers_of(tiny_model) == [], timeout_s=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert servers_of(tiny_model) == []
    assert not layout.run_dir(KEY).exists() or not any(layout.run_dir(KEY).iterdir())
    (attempt,) = layout.failed_dir(KEY).iterdir()
    failure = json.loads((attempt / "failure.json").read_text())
    assert failure["status"] == "unfinished" and "killed" in failure["failure"]
    assert failure["pid"] == child.pid


def test_a_busy_baseline_is_kept_but_flagged_with_the_reason(tiny_model, tmp_path, monkeypatch):
    """A fake CPU meter that reads 100 % throughout: the run completes, marked invalid."""
    from serving_energy.meters.base import METHOD_SAMPLED, Availability, Meter, Reading

    class BusyMachine(Meter):
        name, own_thread, method = "system", False, METHOD_SAMPLED
        measures = ("cpu_usage",)
        update_period_s = 0.1

        def availability(self):
            return Availability.yes()

        def read(self, t_s):
            return [
                Reading(t_s, "system", "cpu_usage", 100.0, "%", "gauge", METHOD_SAMPLED, "fake")
            ]

    real_build = protocol.build_meters
    monkeypatch.setattr(
        protocol,
        "build_meters",
        lambda settings: [BusyMachine(), *[m for m in real_build(settings) if m.name != "system"]],
    )
    run = measure(tmp_path, tiny_model, 3)
    assert run.status == "ok" and run.valid is False
    assert any(
        reason.startswith("idle baseline: CPU usage 100.0 %") for reason in run.validity["reasons"]
    )
    stored = json.loads(ResultsLayout(tmp_path).run_record(KEY).read_text())
    assert stored["validity"]["quantities"]["idle_cpu_usage_pct"]["idle-before"] == 100.0
