"""Processes live and die together: signals become Interrupted, orphans notice, seal holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from serving_energy.core.lifecycle import (
    PARENT_PID_ENV,
    Interrupted,
    ParentWatchdog,
    interruptible,
    seal,
)

from .fakes import wait_until


def test_a_termination_signal_becomes_interrupted_and_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted, match="received SIGTERM"), interruptible():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted long before this ends
    assert signal.getsignal(signal.SIGTERM) is before


def test_seal_ignores_signals_until_exit_and_does_nothing_outside():
    # Outside interruptible: no effect on this (pytest's) process. Compared with what it was, as
    # a shell starting pytest in the background has already set SIGINT to SIG_IGN.
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    seal()
    assert {sig: signal.getsignal(sig) for sig in before} == before
    code = (
        "import os, signal, sys; sys.path.insert(0, sys.argv[1])\n"
        "from serving_energy.core.lifecycle import interruptible, seal\n"
        "with interruptible():\n"
        "    seal()\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "print('finished')\n"
    )
    scripts = os.path.join(os.path.dirname(__file__), "..", "..", "workflow", "scripts")
    result = subprocess.run([sys.executable, "-c", code, scripts], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "finished", result.stderr


def test_the_watchdog_calls_back_once_the_parent_is_gone():
    called = threading.Event()
    reasons = []

    def orphaned(reason: str) -> None:
        reasons.append(reason)
        called.set()

    # A parent pid that is not ours stands for a parent that has exited.
    with ParentWatchdog(interval_s=0.05, on_orphaned=orphaned, parent_pid=os.getppid() + 1):
        assert called.wait(timeout=5)
    assert "exited while this job was running" in reasons[0]
    with ParentWatchdog(interval_s=0.05, on_orphaned=orphaned):
        time.sleep(0.3)
    assert len(reasons) == 1


def test_a_child_that_asked_dies_with_its_parent(tmp_path):
    """Parent (sleeping) starts a child that calls die_with_parent; SIGKILL the parent."""
    scripts = os.path.join(os.path.dirname(__file__), "..", "..", "workflow", "scripts")
    child_code = (
        "import sys, time; sys.path.insert(0, sys.argv[1])\n"
        "from serving_energy.core.lifecycle import die_with_parent\n"
        "die_with_parent(); print('ready', flush=True); time.sleep(60)\n"
    )
    parent_code = (
        "import os, subprocess, sys, time\n"
        f"env = {{**os.environ, {PARENT_PID_ENV!r}: str(os.getpid())}}\n"
        "child = subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]], env=env,"
        " stdout=subprocess.PIPE, text=True)\n"
        "child.stdout.readline(); print(child.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code, child_code, scripts], stdout=subprocess.PIPE, text=True
    )
    child_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    assert wait_until(lambda: not _alive(child_pid), timeout_s=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:  # a zombie is dead
        return handle.read().split()[2] != "Z"
