"""Progress for a person watching the console: what a long job is doing, without the chatter.

A workflow job's library output goes to its log file (``logs.log_to``); this module writes the
few lines a person needs to the console: a countdown through long idle windows and cooldowns,
and how many requests are done. On a terminal it redraws one line; elsewhere (CI, a cluster's
job output) it prints a line now and then, never a flood.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

_console: IO[str] | None = None
NOTE_EVERY_S = 30.0  # how often a plain (non-terminal) console gets a line


def set_console(stream: IO[str] | None) -> None:
    """Where progress goes (the job's terminal; ``logs.log_to`` sets it)."""
    global _console
    _console = stream


def console() -> IO[str]:
    return _console or sys.stderr


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def say(message: str) -> None:
    stream = console()
    stream.write(message + "\n")
    stream.flush()


def countdown(
    label: str,
    seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Sleep ``seconds``, showing the time left when the wait is long enough to wonder about."""
    if seconds < 5:
        sleep(seconds)
        return
    stream = console()
    terminal = _is_terminal(stream)
    tick = 1.0 if terminal else NOTE_EVERY_S
    end = clock() + seconds
    say(f"{label}: {seconds:.0f} s")
    while (left := end - clock()) > 0:
        sleep(min(tick, left))
        left = max(0.0, end - clock())
        if terminal:
            stream.write(f"\r{label}: {left:4.0f} s left ")
            stream.flush()
        elif left > 0:
            say(f"{label}: {left:.0f} s left")
    if terminal:
        stream.write("\n")
        stream.flush()


class Counter:
    """``done of total`` for a loop: redrawn in place on a terminal, a line every 30 s elsewhere."""

    def __init__(self, label: str, total: int, clock: Callable[[], float] = time.monotonic):
        self.label, self.total, self.done, self.failed = label, total, 0, 0
        self.clock = clock
        self.stream = console()
        self.terminal = _is_terminal(self.stream)
        self.every_s = 0.5 if self.terminal else NOTE_EVERY_S
        self.last_note = clock()

    def _text(self) -> str:
        failures = f", {self.failed} failed" if self.failed else ""
        return f"{self.label}: {self.done} of {self.total}{failures}"

    def update(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        if self.clock() - self.last_note < self.every_s:
            return
        self.last_note = self.clock()
        if self.terminal:
            self.stream.write("\r" + self._text())
            self.stream.flush()
        else:
            say(self._text())

    def close(self) -> None:
        if self.terminal:
            self.stream.write("\r")
        say(self._text().replace(f"of {self.total}", f"of {self.total} done"))
