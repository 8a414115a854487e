"""A calm console: a job's chatter goes to its log, the console gets progress and one error line."""

from __future__ import annotations

import io
import subprocess
import sys

from serving_energy.core import progress
from tests.helpers import REPO

JOB = """
import logging, sys, warnings
sys.path.insert(0, sys.argv[1])
from serving_energy.core import progress
from serving_energy.core.logs import log_to
with log_to(sys.argv[2]) as log:
    log.info("library detail")
    logging.getLogger("transformers").warning("third-party chatter")
    warnings.warn("TracerWarning: converting a tensor to a Python boolean")
    print("raw stderr from an engine", file=sys.stderr)
    log.warning("something the user should see")
    progress.say("measure m <ONNX, CPU> rep 1: measuring")
    raise RuntimeError("the server died\\nwith a long story")
"""


def test_chatter_goes_to_the_log_and_the_console_stays_calm(tmp_path):
    log = tmp_path / "job.log"
    result = subprocess.run(
        [sys.executable, "-c", JOB, str(REPO / "workflow" / "scripts"), str(log)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    console = result.stderr.strip().splitlines()
    assert console == [
        "WARNING serving_energy: something the user should see",
        "measure m <ONNX, CPU> rep 1: measuring",
        f"ERROR RuntimeError: the server died (full log: {log})",
    ]
    text = log.read_text()
    for fragment in (
        "library detail",
        "third-party chatter",
        "TracerWarning",
        "raw stderr from an engine",
        "Traceback (most recent call last)",
        "with a long story",
    ):
        assert fragment in text, fragment
    assert text.count("Traceback") == 1


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_a_long_idle_window_counts_down_a_line_every_30_seconds():
    stream, fake = io.StringIO(), FakeTime()
    progress.set_console(stream)
    try:
        progress.countdown("idle-before", 100, sleep=fake.sleep, clock=fake.clock)
        progress.countdown("idle-after", 1, sleep=fake.sleep, clock=fake.clock)  # short: silent
    finally:
        progress.set_console(None)
    assert stream.getvalue().splitlines() == [
        "idle-before: 100 s",
        "idle-before: 70 s left",
        "idle-before: 40 s left",
        "idle-before: 10 s left",
    ]
    assert fake.now == 101


def test_request_progress_is_a_line_now_and_then_off_a_terminal():
    stream, fake = io.StringIO(), FakeTime()
    progress.set_console(stream)
    try:
        counter = progress.Counter("requests", 164, clock=fake.clock)
        for index in range(164):
            fake.now += 1.0
            counter.update(ok=index != 5)
        counter.close()
    finally:
        progress.set_console(None)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "requests: 30 of 164, 1 failed"
    assert lines[-1] == "requests: 164 of 164 done, 1 failed"
    assert len(lines) == 6
