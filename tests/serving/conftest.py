"""Fixtures of the serving tests: a fake engine's app, and one tiny real stand-in per session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path

import pytest

from .fakes import MODEL, TINY, FakeEngine, app_client, make_app


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def client(fake_engine):
    with app_client(make_app(fake_engine)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer GPT-2 stand-in with the small offline BPE tokenizer, built once per session."""
    from transformers.utils import logging

    from serving_energy.data.standins import build_standin

    logging.set_verbosity_error()
    out_dir = tmp_path_factory.mktemp("serving-models") / MODEL
    build_standin("gpt2", out_dir, **TINY)
    return out_dir
