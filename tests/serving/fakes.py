"""Fakes and helpers shared by the serving tests: a deterministic engine, its app, prompts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from serving_energy.data.dataset import Prompt
from serving_energy.engines import EngineInfo, Generation

TINY = {"n_layers": 2, "hidden_size": 64, "n_heads": 4, "tokenizer": "bpe-humaneval", "seed": 0}
MODEL = "tiny-gpt2"
PROMPTS = (
    "def has_close_elements(numbers, threshold):",
    "    return sorted(set(",
    "def truncate_number(number: float) -> float:",
    "    for idx, elem in enumerate(numbers):",
)


class FakeEngine:
    """One token per whitespace-separated word; new token i is ``t{i}``. Raises on ``FAIL``."""

    fail_marker = "FAIL"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def prompt_token_count(self, prompt: str) -> int:
        return max(1, len(prompt.split()))

    def generate(self, prompt: str, max_new_tokens: int) -> Generation:
        self.calls.append((prompt, max_new_tokens))
        if self.fail_marker in prompt:
            raise RuntimeError("the fake engine broke on purpose")
        ids = tuple(range(max_new_tokens))
        text = " ".join(f"t{i}" for i in ids)
        return Generation(self.prompt_token_count(prompt), ids, text, 0.001)

    def info(self) -> EngineInfo:
        return EngineInfo(
            engine="torch",
            provider="cpu",
            device="cpu",
            threads=1,
            model_dir="/nowhere/fake",
            artefact_dir=None,
            library_versions={"torch": "0.0-fake"},
        )


def make_app(engine: FakeEngine | None = None, **defaults):
    from serving_energy.serving.server import GenerationDefaults, create_app

    engine = engine or FakeEngine()
    return create_app(
        lambda: engine,
        model_name="fake-model",
        engine_name="torch",
        provider="cpu",
        defaults=GenerationDefaults(**{"max_length": 16, "max_positions": 64, **defaults}),
    )


def prompts(n: int) -> list[Prompt]:
    return [
        Prompt(task_id=f"HumanEval/{i}", prompt=PROMPTS[i % len(PROMPTS)], n_tokens=0)
        for i in range(n)
    ]


def wait_until(predicate, timeout_s: float, step_s: float = 0.05) -> bool:
    """Poll ``predicate`` with sleeps, at most ``timeout_s``; never spins."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


@contextmanager
def app_client(app) -> Iterator:
    """An in-process client of ``app`` that runs its lifespan (the engine loads), then ends it.

    starlette's TestClient needs the ``httpx2`` package, which the project does not pin;
    schemathesis' ASGI client is a ``requests.Session`` that drives the app in-process the same way.
    """
    from schemathesis.python import asgi

    try:
        with asgi.get_client(app) as client:
            yield client
    finally:
        asgi.shutdown_lifespans()


def bare_client(app):
    """An in-process client that does not run the lifespan: the app as it is before start-up."""
    from schemathesis.python import asgi

    return asgi.get_client(app)
