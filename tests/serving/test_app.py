"""The FastAPI app in-process (an ASGI client, lifespan included) with a fake engine."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest

from serving_energy import __version__
from serving_energy.serving.server import (
    MAX_NEW_TOKENS_LIMIT,
    MAX_PROMPT_CHARS,
    GenerateRequest,
    GenerationDefaults,
    new_tokens_for,
)

from .fakes import FakeEngine, app_client, bare_client, make_app


def detail_text(response) -> str:
    """The 422/500 detail as one string (FastAPI's validation errors are a list of dicts)."""
    detail = response.json()["detail"]
    if isinstance(detail, list):
        return " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in detail)
    return str(detail)


def test_health_reports_model_engine_device_and_versions(client):
    response = client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["ready"] is True
    assert health["model"] == "fake-model"
    assert health["engine"] == "torch"
    assert health["provider"] == "cpu"
    assert health["device"] == "cpu"
    assert health["threads"] == 1
    assert health["load_duration_s"] >= 0
    assert health["versions"] == {"serving_energy": __version__, "torch": "0.0-fake"}
    assert health["engine_info"]["model_dir"] == "/nowhere/fake"


def test_health_before_start_up_is_not_ready(fake_engine):
    client = bare_client(make_app(fake_engine))  # the lifespan has not run
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["ready"] is False
    assert response.json()["device"] is None
    unloaded = client.post("/generate", json={"prompt": "x"})
    assert unloaded.status_code == 503
    assert "not loaded" in unloaded.json()["detail"]


def test_generate_exact_count_from_max_new_tokens(client, fake_engine):
    response = client.post("/generate", json={"prompt": "def f ( x ) :", "max_new_tokens": 7})
    assert response.status_code == 200
    body = response.json()
    assert body["new_tokens"] == 7
    assert body["prompt_tokens"] == 6
    assert body["text"] == "t0 t1 t2 t3 t4 t5 t6"
    assert body["latency_s"] >= 0
    assert fake_engine.calls == [("def f ( x ) :", 7)]


def test_generate_count_from_request_max_length(client):
    response = client.post("/generate", json={"prompt": "a b c", "max_length": 10})
    assert response.status_code == 200
    assert response.json()["new_tokens"] == 7  # 10 total - 3 prompt tokens


def test_max_new_tokens_wins_over_max_length(client):
    response = client.post(
        "/generate", json={"prompt": "a b c", "max_length": 10, "max_new_tokens": 2}
    )
    assert response.json()["new_tokens"] == 2


def test_generate_count_from_server_default_max_length(client):
    response = client.post("/generate", json={"prompt": "a b c d"})
    assert response.status_code == 200
    assert response.json()["new_tokens"] == 12  # default max_length 16 - 4 prompt tokens


def test_generate_count_from_server_default_max_new_tokens(fake_engine):
    with app_client(make_app(fake_engine, max_new_tokens=5)) as client:
        response = client.post("/generate", json={"prompt": "a b c d"})
    assert response.status_code == 200
    assert response.json()["new_tokens"] == 5


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"prompt": ""}, "at least 1 character"),
        ({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, f"at most {MAX_PROMPT_CHARS} characters"),
        ({"prompt": 12}, "valid string"),
        ({"prompt": None}, "valid string"),
        ({}, "prompt: Field required"),
        ({"prompt": "a", "max_new_tokens": "4"}, "valid integer"),
        ({"prompt": "a", "max_new_tokens": 4.0}, "valid integer"),
        ({"prompt": "a", "max_new_tokens": 4.5}, "valid integer"),
        ({"prompt": "a", "max_new_tokens": True}, "valid integer"),
        ({"prompt": "a", "max_length": "10"}, "valid integer"),
        ({"prompt": "a", "max_new_tokens": 0}, "greater than or equal to 1"),
        ({"prompt": "a", "max_new_tokens": -3}, "greater than or equal to 1"),
        ({"prompt": "a", "max_new_tokens": MAX_NEW_TOKENS_LIMIT + 1}, "less than or equal to"),
        ({"prompt": "a", "max_length": 1}, "greater than or equal to 2"),
        ({"prompt": "a", "max_length": MAX_NEW_TOKENS_LIMIT + 1}, "less than or equal to"),
        ({"prompt": "a", "temperature": 0.7}, "temperature: Extra inputs are not permitted"),
    ],
)
def test_invalid_requests_are_422_with_a_message(client, fake_engine, body, expected):
    response = client.post("/generate", json=body)
    assert response.status_code == 422, response.text
    assert expected in detail_text(response)
    assert fake_engine.calls == []


def test_non_json_body_is_422(client):
    response = client.post(
        "/generate", data=b"not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_body_that_is_not_utf8_is_400(client):
    response = client.post(
        "/generate", data=b"\xff\xfe{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "error parsing the body" in response.json()["detail"]


def test_prompt_too_long_for_max_length_is_422(client, fake_engine):
    response = client.post("/generate", json={"prompt": "a b c d e", "max_length": 5})
    assert response.status_code == 422
    message = detail_text(response)
    assert "prompt has 5 tokens" in message and "total length 5" in message
    default = client.post(
        "/generate", json={"prompt": " ".join(["w"] * 16)}
    )  # server max_length 16
    assert default.status_code == 422
    assert "total length 16" in detail_text(default)
    assert fake_engine.calls == []


def test_over_the_models_positions_is_422(client, fake_engine):
    response = client.post("/generate", json={"prompt": "a b c d", "max_new_tokens": 61})
    assert response.status_code == 422
    assert "exceeds the model's 64 positions" in detail_text(response)
    at_limit = client.post("/generate", json={"prompt": "a b c d", "max_new_tokens": 60})
    assert at_limit.status_code == 200
    assert fake_engine.calls == [("a b c d", 60)]


def test_engine_error_is_500_with_its_message_and_the_server_keeps_serving(client, fake_engine):
    response = client.post("/generate", json={"prompt": "please FAIL now", "max_new_tokens": 3})
    assert response.status_code == 500
    assert response.json()["detail"] == "engine error: the fake engine broke on purpose"
    after = client.post("/generate", json={"prompt": "fine", "max_new_tokens": 3})
    assert after.status_code == 200
    assert after.json()["new_tokens"] == 3
    assert client.get("/health").json()["ready"] is True


def test_tokenizer_error_is_500_too(fake_engine):
    def broken(prompt: str) -> int:
        raise ValueError("cannot tokenize")

    fake_engine.prompt_token_count = broken
    with app_client(make_app(fake_engine)) as client:
        response = client.post("/generate", json={"prompt": "x"})
    assert response.status_code == 500
    assert "cannot tokenize" in response.json()["detail"]


def test_openapi_schema_describes_the_api(client):
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/health", "/generate"}
    generate = schema["paths"]["/generate"]["post"]
    assert {"200", "400", "413", "422", "500"} <= set(generate["responses"])
    request = schema["components"]["schemas"]["GenerateRequest"]
    assert request["additionalProperties"] is False
    assert request["required"] == ["prompt"]
    assert request["properties"]["prompt"]["maxLength"] == MAX_PROMPT_CHARS


@pytest.mark.parametrize(
    ("request_fields", "defaults", "prompt_tokens", "expected"),
    [
        ({"max_new_tokens": 3}, {}, 10, 3),
        ({"max_length": 20}, {}, 10, 10),
        ({}, {"max_new_tokens": 9}, 10, 9),
        ({}, {"max_length": 128}, 10, 118),
        ({"max_length": 20}, {"max_new_tokens": 9}, 10, 10),  # the request's total wins
    ],
)
def test_new_tokens_for(request_fields, defaults, prompt_tokens, expected):
    request = GenerateRequest(prompt="p", **request_fields)
    assert new_tokens_for(prompt_tokens, request, GenerationDefaults(**defaults)) == expected


def test_engine_is_loaded_once_for_many_requests():
    loads = []

    def load():
        loads.append(1)
        return FakeEngine()

    from serving_energy.serving.server import create_app

    app = create_app(
        load, model_name="m", engine_name="onnx", provider="cpu", defaults=GenerationDefaults()
    )
    with app_client(app) as client:
        for _ in range(5):
            assert (
                client.post("/generate", json={"prompt": "x", "max_new_tokens": 1}).status_code
                == 200
            )
    assert loads == [1]


def test_a_huge_body_is_413_and_nothing_is_echoed(client, fake_engine):
    prompt = "x" * (50 * 1024 * 1024)
    response = client.post("/generate", json={"prompt": prompt})
    assert response.status_code == 413
    assert len(response.content) < 200
    assert "send a shorter prompt" in response.json()["detail"]
    assert fake_engine.calls == []


def test_a_streamed_body_without_length_is_cut_off_at_the_limit():
    import asyncio

    from serving_energy.serving.server import MAX_BODY_BYTES, BodySizeLimit

    chunks = [b"{" + b"x" * 65536] * (MAX_BODY_BYTES // 65536 + 2)
    sent: list[dict] = []
    reached_app = []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            if not message.get("more_body"):
                break
        reached_app.append(True)

    async def receive():
        body = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/generate", "headers": []}
    asyncio.run(BodySizeLimit(app)(scope, receive, send))
    assert sent[0]["status"] == 413 and not reached_app


def test_validation_errors_quote_the_field_briefly_never_the_body(client):
    response = client.post("/generate", json={"prompt": "y" * 30_000, "max_new_tokens": "lots"})
    assert response.status_code == 422
    assert len(response.content) < 600
    detail = {".".join(map(str, e["loc"])): e for e in response.json()["detail"]}
    assert (
        detail["body.prompt"]["value"].startswith("'yyyy")
        and len(detail["body.prompt"]["value"]) <= 60
    )
    assert detail["body.max_new_tokens"]["value"] == "'lots'"
    missing = client.post("/generate", json={"max_new_tokens": 3, "filler": "z" * 10_000})
    assert "value" not in {k for e in missing.json()["detail"] if e["type"] == "missing" for k in e}
    assert len(missing.content) < 600


class OneAtATimeEngine(FakeEngine):
    """Records how many threads are inside info() at once (llama.cpp's was not thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.most_inside = 0
        self._count_lock = threading.Lock()

    def info(self):
        with self._count_lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.05)  # long enough that unserialised calls would overlap
        with self._count_lock:
            self.inside -= 1
        return super().info()


def test_concurrent_health_requests_call_the_engines_info_one_at_a_time():
    """A client polling /health during a slow load leaves requests that the server answers all
    at once when the load ends: the engine's info() must still run on one thread at a time."""
    engine = OneAtATimeEngine()
    with app_client(make_app(engine)) as client:
        start = threading.Barrier(6)

        def health():
            start.wait()
            return client.get("/health").status_code

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(lambda _: health(), range(6)))
    assert codes == [200] * 6
    assert engine.most_inside == 1
