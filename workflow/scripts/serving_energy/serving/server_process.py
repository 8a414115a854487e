"""Start the model server as a child process, wait until it is ready, stop it; report failures.

The server runs in its own process (as it would in production) and writes its log to a file (one
per attempt), so a failed start can show its tail. It dies with the process that started it, even
if that process is killed outright (``lifecycle.die_with_parent``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from serving_energy.core.lifecycle import PARENT_PID_ENV

LIBRARY_ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL_LINES = 40


class ServerError(RuntimeError):
    """The server did not start, or died; the message carries the tail of its log."""


@dataclass(frozen=True)
class ServerSpec:
    model_name: str
    model_dir: Path
    artefact_dir: Path | None
    engine: str
    provider: str
    threads: int
    host: str = "127.0.0.1"
    port: int = 0
    max_length: int = 128
    max_new_tokens: int | None = None
    # The engine's own settings (the config's engines.<engine>), checked by the engine.
    engine_options: Mapping[str, Any] = field(default_factory=dict)

    def command(self, port_file: Path) -> list[str]:
        command = [
            sys.executable, "-m", "serving_energy.serving.server",
            "--model-name", self.model_name,
            "--model-dir", str(self.model_dir),
            "--engine", self.engine,
            "--provider", self.provider,
            "--threads", str(self.threads),
            "--host", self.host,
            "--port", str(self.port),
            "--port-file", str(port_file),
            "--max-length", str(self.max_length),
            "--engine-options", json.dumps(dict(self.engine_options), sort_keys=True),
        ]  # fmt: skip
        if self.artefact_dir is not None:
            command += ["--artefact-dir", str(self.artefact_dir)]
        if self.max_new_tokens is not None:
            command += ["--max-new-tokens", str(self.max_new_tokens)]
        return command


def thread_environment(threads: int) -> dict[str, str]:
    """Thread variables set explicitly, so the engine never inherits an accidental value."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
    return {name: str(threads) for name in names}


class ServerProcess:
    """A running server; use as a context manager so it is always stopped."""

    def __init__(self, spec: ServerSpec, log_path: Path):
        self.spec = spec
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None
        self.base_url: str | None = None
        self.health: dict | None = None
        self._scratch: Path | None = None

    @property
    def _port_file(self) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="serving-energy-"))
        return self._scratch / "port.json"

    def start(self, timeout_s: float) -> dict:
        """Start and wait for /health to say ready; returns the health document."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        environment = {
            **os.environ,
            **thread_environment(self.spec.threads),
            "PYTHONPATH": os.pathsep.join(
                [str(LIBRARY_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "PYTHONUNBUFFERED": "1",
            PARENT_PID_ENV: str(os.getpid()),
        }
        log = self.log_path.open("wb")  # this attempt's log only: a failure quotes this attempt
        self.process = subprocess.Popen(
            self.spec.command(self._port_file),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._raise_if_dead("during start-up")
            if self.base_url is None and self._port_file.is_file():
                bound = json.loads(self._port_file.read_text())
                host = f"[{bound['host']}]" if ":" in bound["host"] else bound["host"]
                self.base_url = f"http://{host}:{bound['port']}"
            if self.base_url is not None:
                health = self._health()
                if health is not None and health.get("ready"):
                    self.health = health
                    return health
            time.sleep(0.2)
        self.stop()
        raise ServerError(
            f"server for {self.spec.model_name} ({self.spec.engine}, {self.spec.provider}) was not "
            f"ready after {timeout_s:.0f} s\n{self.log_tail()}"
        )

    def _health(self) -> dict | None:
        try:
            response = requests.get(f"{self.base_url}/health", timeout=2.0)
        except requests.RequestException:
            return None  # not accepting connections yet: the model is still loading
        return response.json() if response.status_code == 200 else None

    def _raise_if_dead(self, when: str) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ServerError(
                f"server for {self.spec.model_name} ({self.spec.engine}, {self.spec.provider}) "
                f"exited with code {self.process.returncode} {when}\n{self.log_tail()}"
            )

    def check_alive(self) -> None:
        self._raise_if_dead("while serving")

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (uvicorn shuts down gracefully), SIGKILL if it does not; returns the exit code."""
        try:
            if self.process is None or self.process.poll() is not None:
                return None if self.process is None else self.process.returncode
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                return self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                return self.process.wait()
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log_path.is_file():
            return "(no server log)"
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "server log (last lines):\n" + "\n".join(f"  | {line}" for line in tail)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
