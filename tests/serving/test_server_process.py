"""The real server as a child process on a tiny stand-in: start, serve over loopback, stop; and
its start-up failures (busy port, model that does not load) reported with the log tail, fast."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from serving_energy.serving.client import send_prompts
from serving_energy.serving.server_process import ServerError, ServerProcess, ServerSpec

from .fakes import MODEL, prompts

START_TIMEOUT_S = 120


def spec_for(model_dir, **overrides) -> ServerSpec:
    fields = {
        "model_name": MODEL,
        "model_dir": model_dir,
        "artefact_dir": None,
        "engine": "torch",
        "provider": "cpu",
        "threads": 1,
        "max_new_tokens": 4,
    }
    return ServerSpec(**{**fields, **overrides})


def test_real_server_serves_over_loopback_and_stops(tiny_model, tmp_path):
    log = tmp_path / "server.log"
    server = ServerProcess(spec_for(tiny_model), log)
    with server:
        health = server.start(START_TIMEOUT_S)
        assert health["ready"] is True
        assert health["device"] == "cpu"
        assert (health["model"], health["engine"], health["provider"]) == (MODEL, "torch", "cpu")
        assert health["threads"] == 1
        assert "torch" in health["versions"] and "serving_energy" in health["versions"]
        assert server.base_url.startswith("http://127.0.0.1:")
        assert not server.base_url.endswith(":0")

        before = time.monotonic()
        records = send_prompts(server.base_url, prompts(3), timeout_s=60, progress=False)
        after = time.monotonic()
        assert [r.index for r in records] == [0, 1, 2]
        assert [r.task_id for r in records] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
        assert all(r.ok and r.http_status == 200 and r.error is None for r in records)
        assert all(
            r.new_tokens == 4 and r.prompt_tokens > 0 and r.output is not None for r in records
        )
        # On the monotonic clock, one after the other, in order.
        assert before <= records[0].start_s
        for r in records:
            assert r.start_s <= r.end_s
            assert r.latency_s == pytest.approx(r.end_s - r.start_s)
            assert 0 < r.server_latency_s <= r.latency_s
        for earlier, later in zip(records, records[1:], strict=False):
            assert earlier.end_s <= later.start_s
        assert records[-1].end_s <= after

        # Greedy: the same prompt gives the same text; validation holds over real HTTP too.
        again = send_prompts(server.base_url, prompts(1), timeout_s=60, progress=False)
        assert again[0].output == records[0].output
        bad = requests.post(f"{server.base_url}/generate", json={"prompt": ""}, timeout=10)
        assert bad.status_code == 422
        base_url, process = server.base_url, server.process
    assert process.poll() is not None  # stopped on leaving the block
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base_url}/health", timeout=2)
    assert server.stop() == process.returncode  # stopping twice is harmless


def test_port_in_use_fails_fast_with_the_log_tail(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        # No model is loaded before the bind, so the folder need not hold one.
        server = ServerProcess(spec_for(tmp_path / "unused", port=port), tmp_path / "server.log")
        started = time.monotonic()
        with pytest.raises(ServerError) as raised:
            server.start(START_TIMEOUT_S)
        elapsed = time.monotonic() - started
    message = str(raised.value)
    assert f"cannot bind 127.0.0.1:{port}" in message
    assert "in use" in message.lower()
    assert "exited with code 1 during start-up" in message
    assert "server log (last lines)" in message
    assert elapsed < 60  # failed at the bind, not at the start-up timeout


def test_model_that_does_not_load_names_model_and_engine(tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    server = ServerProcess(spec_for(empty, model_name="broken-model"), tmp_path / "server.log")
    with pytest.raises(ServerError) as raised:
        server.start(START_TIMEOUT_S)
    message = str(raised.value)
    assert "could not load model broken-model in engine torch on cpu" in message
    assert "server for broken-model (torch, cpu) exited" in message
    assert server.process.poll() is not None


def test_exported_engine_without_its_artefact_names_model_and_engine(tmp_path):
    missing = tmp_path / "onnx-artefact"  # never exported
    server = ServerProcess(
        spec_for(tmp_path / "model", engine="onnx", artefact_dir=missing), tmp_path / "server.log"
    )
    with pytest.raises(ServerError) as raised:
        server.start(START_TIMEOUT_S)
    message = str(raised.value)
    assert f"could not load model {MODEL} in engine onnx on cpu" in message
    assert f"no exported onnx artefact at {missing}" in message


def test_start_up_timeout_stops_the_server_and_reports(tiny_model, tmp_path):
    server = ServerProcess(spec_for(tiny_model), tmp_path / "server.log")
    with pytest.raises(ServerError) as raised:
        server.start(timeout_s=0.5)  # far too short to import torch and load the model
    assert "was not ready after" in str(raised.value)
    assert server.process.poll() is not None  # not left running


def test_bind_socket_makes_connections_without_nagle_delay():
    """asyncio sets TCP_NODELAY on accepted connections only for sockets whose proto is TCP;
    without it every loopback response waited ~40 ms for the client's delayed ACK."""
    import asyncio

    from serving_energy.serving.server import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP
    nodelay: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport) -> None:
            accepted = transport.get_extra_info("socket")
            nodelay.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def accept_one() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            port = sock.getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(100):  # bounded: the accept happens within a few loop turns
                if nodelay:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(accept_one())
    assert nodelay and nodelay[0] != 0


def test_bind_socket_busy_port_exits_with_a_clear_message():
    from serving_energy.serving.server import bind_socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit) as raised:
            bind_socket("127.0.0.1", port)
    assert f"cannot bind 127.0.0.1:{port}" in str(raised.value)
