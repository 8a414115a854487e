"""The HTTP client against a tiny local HTTP server: every outcome is a record, none raises."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from serving_energy.serving.client import send_prompts

from .fakes import prompts

SLOW_S = 2.0
TIMEOUT_S = 0.3


class Handler(BaseHTTPRequestHandler):
    """Behaviour by path prefix: /ok, /slow, /invalid (422), /broken (500 text), /garbled, /odd."""

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.seen.append((self.path, request))
        kind = self.path.split("/")[1]
        if kind == "slow":
            time.sleep(SLOW_S)
        if kind in ("ok", "slow"):
            words = len(request["prompt"].split())
            body = {"text": " x" * 3, "new_tokens": 3, "prompt_tokens": words, "latency_s": 0.001}
            self._reply(200, json.dumps(body).encode())
        elif kind == "invalid":
            self._reply(
                422, json.dumps({"detail": "prompt has 20 tokens, which leaves no room"}).encode()
            )
        elif kind == "broken":
            self._reply(500, b"Internal Server Error", "text/plain")
        elif kind == "garbled":
            self._reply(200, b"<html>not json</html>", "text/html")
        elif kind == "odd":
            self._reply(200, json.dumps({"unexpected": True}).encode())
        else:
            self._reply(404, json.dumps(["no", "such", "path"]).encode())


@pytest.fixture(scope="module")
def local_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.seen = []
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def test_ok_requests_are_recorded_in_order_on_the_given_clock(local_server):
    server, base = local_server
    server.seen.clear()
    records = send_prompts(f"{base}/ok", prompts(3), timeout_s=5, clock=FakeClock(), progress=False)
    assert [(r.index, r.task_id, r.status, r.http_status) for r in records] == [
        (0, "HumanEval/0", "ok", 200),
        (1, "HumanEval/1", "ok", 200),
        (2, "HumanEval/2", "ok", 200),
    ]
    assert [(r.start_s, r.end_s, r.latency_s) for r in records] == [
        (100.5, 101.0, 0.5), (101.5, 102.0, 0.5), (102.5, 103.0, 0.5)
    ]  # fmt: skip
    assert records[0].new_tokens == 3 and records[0].output == " x x x"
    assert records[0].server_latency_s == 0.001 and records[0].error is None
    # The body is exactly the prompt: the server's defaults decide the generation.
    assert [request for _, request in server.seen] == [{"prompt": p.prompt} for p in prompts(3)]


def test_first_index_numbers_warm_up_requests_below_zero(local_server):
    _, base = local_server
    records = send_prompts(f"{base}/ok", prompts(2), timeout_s=5, progress=False, first_index=-2)
    assert [r.index for r in records] == [-2, -1]


def test_timeouts_are_bounded_and_recorded_as_failed(local_server):
    _, base = local_server
    started = time.monotonic()
    records = send_prompts(f"{base}/slow", prompts(2), timeout_s=TIMEOUT_S, progress=False)
    elapsed = time.monotonic() - started
    assert elapsed < 2 * SLOW_S  # each request gave up after the timeout, not after the reply
    for record in records:
        assert record.status == "failed" and not record.ok
        assert record.http_status is None and record.output is None and record.new_tokens is None
        assert record.error.startswith("ReadTimeout")
        assert TIMEOUT_S * 0.9 <= record.latency_s < SLOW_S


@pytest.mark.parametrize(
    ("path", "status", "expected"),
    [
        ("invalid", 422, "HTTP 422: prompt has 20 tokens, which leaves no room"),
        ("broken", 500, "HTTP 500: Internal Server Error"),
        ("missing", 404, "HTTP 404: ['no', 'such', 'path']"),
        ("garbled", 200, "HTTP 200 with an unreadable body"),
        ("odd", 200, "HTTP 200 with an unreadable body"),
    ],
)
def test_bad_responses_are_recorded_with_the_detail_not_raised(
    local_server, path, status, expected
):
    _, base = local_server
    records = send_prompts(f"{base}/{path}", prompts(2), timeout_s=5, progress=False)
    assert len(records) == 2
    for record in records:
        assert record.status == "failed"
        assert record.http_status == status
        assert record.error.startswith(expected), record.error
        assert record.output is None


def test_refused_connection_is_recorded(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nobody listens there
    records = send_prompts(f"http://127.0.0.1:{port}", prompts(2), timeout_s=2, progress=False)
    assert [r.status for r in records] == ["failed", "failed"]
    assert all(r.error.startswith("ConnectionError") for r in records)


def test_progress_counts_failures(local_server, capsys):
    _, base = local_server
    records = send_prompts(f"{base}/invalid", prompts(2), timeout_s=5, progress=True)
    assert len(records) == 2
    assert capsys.readouterr().err.strip() == "requests: 2 of 2 done, 2 failed"
