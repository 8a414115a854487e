"""A measurement's processes live and die together.

A model server that outlives its measurement job, or a measurement job that outlives the Snakemake
that supervised it, keeps loading the machine and corrupts the next measurement. So:

- the server asks the kernel to kill it when its parent (the measurement job) dies, however that
  dies (``die_with_parent``: ``PR_SET_PDEATHSIG`` on Linux);
- the measurement job watches its own parent (Snakemake) and stops itself when it is gone
  (``ParentWatchdog``);
- termination signals (Ctrl-C, ``kill``, SLURM's ``scancel`` and time limit) become an
  ``Interrupted`` exception in the main thread, so the job keeps what it measured with the reason
  and stops its server before it exits (``interruptible``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger("serving_energy.core.lifecycle")

PARENT_PID_ENV = "SERVING_ENERGY_PARENT_PID"
PR_SET_PDEATHSIG = 1
TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Interrupted(BaseException):  # noqa: N818 (like KeyboardInterrupt, which it generalises)
    """The job was told to stop (a signal, or its supervisor died); the message says which."""


def die_with_parent(death_signal: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``death_signal`` to this process when its parent exits.

    The parent records its pid in ``SERVING_ENERGY_PARENT_PID`` before it starts us: if it died
    before the request took effect, we are already orphaned and stop at once. Returns whether the
    kernel accepted the request (False off Linux).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        accepted = libc.prctl(PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0) == 0
    except (OSError, AttributeError):
        accepted = False
    expected = os.environ.get(PARENT_PID_ENV)
    if expected is not None and os.getppid() != int(expected):
        os.kill(os.getpid(), death_signal)
    return accepted


class ParentWatchdog:
    """Calls ``on_orphaned`` (default: SIGTERM to this process) once the parent process is gone.

    Polling the parent pid works whatever killed the parent (even SIGKILL) and needs no help from
    it; ``interval_s`` bounds how long an orphaned job keeps running.
    """

    def __init__(
        self,
        interval_s: float = 0.5,
        on_orphaned: Callable[[str], None] | None = None,
        parent_pid: int | None = None,
    ):
        self.interval_s = interval_s
        self.parent_pid = os.getppid() if parent_pid is None else parent_pid
        self.on_orphaned = on_orphaned or _terminate_self
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="parent-watchdog", daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            if os.getppid() != self.parent_pid:
                self.on_orphaned(
                    f"the supervising process (pid {self.parent_pid}, Snakemake) exited while this "
                    "job was running"
                )
                return

    def __enter__(self) -> ParentWatchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * self.interval_s)


_pending_reason: str | None = None
_active = False  # inside ``interruptible``
_sealed = False  # ``seal`` was called: the job now ends whatever happens


def _terminate_self(reason: str) -> None:
    global _pending_reason
    _pending_reason = reason
    os.kill(os.getpid(), signal.SIGTERM)


@contextmanager
def interruptible(signals: tuple[int, ...] = TERMINATION_SIGNALS) -> Iterator[None]:
    """Turn ``signals`` into ``Interrupted`` in the main thread; repeats are ignored.

    A second Ctrl-C or SIGTERM must not cut short the saving of what the first one interrupted;
    a scheduler that really wants the job gone follows up with SIGKILL anyway.
    """

    def handle(signum, _frame):
        global _pending_reason
        for number in signals:
            signal.signal(number, signal.SIG_IGN)
        reason = _pending_reason or f"received {signal.Signals(signum).name}"
        _pending_reason = None
        logger.warning("stopping: %s", reason)
        raise Interrupted(reason)

    global _active, _sealed
    previous = {number: signal.signal(number, handle) for number in signals}
    _active, _sealed = True, False
    try:
        yield
    finally:
        _active = False
        if not _sealed:
            for number, handler in previous.items():
                signal.signal(number, handler)


def seal() -> None:
    """From here on, finish whatever happens: ignore termination signals until the job exits.

    Called once a run's result is in place: a job that exits with an error after that would make
    Snakemake restore the previous run's backup over the new one (the outputs are ``update()``).
    Outside ``interruptible`` (a library caller, a test) it does nothing.
    """
    global _sealed
    if not _active:
        return
    _sealed = True
    for number in TERMINATION_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
