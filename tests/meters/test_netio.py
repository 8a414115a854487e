"""NETIO poller against a fake device on 127.0.0.1: the documented JSON, and one that hangs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from serving_energy.meters import NetioMeter, Sampler, parse_netio_json, window_metrics

DOCUMENT = json.loads((Path(__file__).parent / "data" / "netio_powerbox_4kf.json").read_text())


class FakeNetio:
    def __init__(self) -> None:
        self.hang = False
        self.release = threading.Event()
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests += 1
                if fake.hang:
                    fake.release.wait(10.0)  # bounded even if the test forgets to release
                    return
                body = json.dumps(DOCUMENT).encode()
                self.send_response(200 if self.path == "/netio.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/netio.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def netio() -> Iterator[FakeNetio]:
    fake = FakeNetio()
    fake.thread.start()
    yield fake
    fake.close()


def test_parse_documented_shape() -> None:
    assert parse_netio_json(DOCUMENT, [1, 2]) == [(1, 123.0, 4321.0), (2, 15.0, 802.0)]
    with pytest.raises(KeyError, match="output 7"):
        parse_netio_json(DOCUMENT, [7])


def test_reads_load_and_energy_of_selected_outputs(netio: FakeNetio) -> None:
    meter = NetioMeter(netio.url, outputs=[1, 2], timeout_s=1.0)
    assert meter.availability().available
    readings = meter.read(5.0)
    power = {r.sensor: r.value for r in readings if r.quantity == "wall_power"}
    energy = {r.sensor: r.value for r in readings if r.quantity == "wall_energy"}
    assert power == {f"netio {netio.url} output 1": 123.0, f"netio {netio.url} output 2": 15.0}
    assert energy[f"netio {netio.url} output 1"] == pytest.approx(4321 * 3600.0)
    assert all(r.method == "external_meter" for r in readings)
    meter.stop()


def test_sampler_polls_on_its_own_thread_and_integrates_load(netio: FakeNetio) -> None:
    meter = NetioMeter(netio.url, outputs=[1], timeout_s=1.0, poll_interval_s=0.2)
    sampler = Sampler([meter], interval_s=0.1)
    sampler.start()
    time.sleep(0.3)
    sampler.mark("inference", "start")
    time.sleep(0.8)
    sampler.mark("inference", "end")
    timeline = sampler.stop()
    assert timeline.errors == ()
    assert len(timeline.select("wall_power")) >= 4
    metrics = window_metrics(timeline)
    assert metrics.wall.energy_j == pytest.approx(123.0 * metrics.duration_s, rel=1e-6)
    assert metrics.wall.method == "external_meter"


def test_hanging_device_is_bounded_and_reported(netio: FakeNetio) -> None:
    meter = NetioMeter(netio.url, outputs=[1], timeout_s=0.3, poll_interval_s=0.1)
    sampler = Sampler([meter], interval_s=0.1)
    sampler.start()  # availability succeeds: the device answers at first
    netio.hang = True
    time.sleep(1.0)
    began = time.monotonic()
    timeline = sampler.stop()
    assert time.monotonic() - began < 2.0  # stop waits at most one bounded request
    assert timeline.availability["netio"].available
    assert timeline.errors, "timeouts must be reported, not swallowed"
    assert all(e.meter == "netio" and "Timeout" in e.message for e in timeline.errors)
    assert 1 <= len(timeline.errors) <= 4  # each poll took ~timeout_s, not forever


def test_unreachable_device_is_unavailable_with_reason(netio: FakeNetio) -> None:
    netio.hang = True
    began = time.monotonic()
    availability = NetioMeter(netio.url, timeout_s=0.3).availability()
    assert time.monotonic() - began < 2.0
    assert not availability.available
    assert "did not answer within 0.3 s" in availability.reason
