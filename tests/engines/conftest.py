"""Session-scoped tiny stand-ins and their exports: each is built and exported once per run."""

from __future__ import annotations

import os
from collections.abc import Mapping

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from serving_energy.data.standins import ARCHITECTURES
from serving_energy.study.vocabulary import CHECKED_ENGINES, ENGINE_SPECS, EXPORTED_ENGINES

# the tests' parameters, from the library: a new engine plug-in is in every parametrized test
__all__ = ["ARCHITECTURES", "CHECKED_ENGINES", "EXPORTED_ENGINES"]
# GPT-2's tokenizer: the one offline tokenizer every engine's export takes (llama.cpp's converter
# refuses tokenizers it does not know).
TINY = {"n_layers": 2, "hidden_size": 64, "n_heads": 4, "tokenizer": "gpt2", "seed": 0}
PROMPTS = (
    "def has_close_elements(numbers, threshold):",
    "    return sorted(set(",
    "from typing import List\n\n\n"
    'def separate_paren_groups(paren_string: str) -> List[str]:\n    """',
)
NEW_TOKENS = 12
THREADS = 1


# Library chatter (TracerWarning on constants in traces, torch.jit deprecation, optimum notices)
# that says nothing about our code; kept out of this directory's test reports only.
QUIET = (
    "ignore::torch.jit.TracerWarning",
    "ignore::DeprecationWarning",
    "ignore::FutureWarning",
    "ignore::UserWarning",
)


def pytest_collection_modifyitems(config, items):
    here = str(config.rootpath / "tests" / "engines")
    for item in items:
        if str(item.path).startswith(here):
            for rule in QUIET:
                item.add_marker(pytest.mark.filterwarnings(rule))


@pytest.fixture(scope="session", autouse=True)
def _quiet_transformers_logging():
    from transformers.utils import logging

    logging.set_verbosity_error()


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


class LazyMapping(Mapping):
    """Fixed keys, values made on first access and kept: tests that need one stand-in or one
    export (e.g. the CUDA tests on a machine without OpenVINO) pay only for that one."""

    def __init__(self, keys, make):
        self._keys, self._make, self._made = tuple(keys), make, {}

    def __getitem__(self, key):
        if key not in self._keys:
            raise KeyError(key)
        if key not in self._made:
            self._made[key] = self._make(key)
        return self._made[key]

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)


@pytest.fixture(scope="session")
def standin_dirs(work_dir):
    """architecture -> directory of a tiny random-weight stand-in."""
    from serving_energy.data.standins import build_standin

    def build(architecture):
        out_dir = work_dir / "models" / architecture
        build_standin(architecture, out_dir, **TINY)
        return out_dir

    return LazyMapping(ARCHITECTURES, build)


def cpu_export(engine, model_dir, out_dir, **settings):
    """``engine``'s export of ``model_dir`` for the CPU (through its plug-in's exporter)."""
    from serving_energy.engines.export import export_model
    from serving_energy.study.vocabulary import ENGINE_SPECS

    provider = "cpu" if ENGINE_SPECS[engine].export_per_provider else None
    return export_model(engine, model_dir, out_dir, provider, settings)


def skip_unless_supported(architecture, engine):
    """Skip, with the engine's own reason, a stand-in its export cannot take (gemma's for
    llama.cpp); that the export refuses it is tested in the engine's own tests."""
    why = ENGINE_SPECS[engine].standin_problem(architecture, TINY["tokenizer"])
    if why:
        pytest.skip(why)


def export_one(model_dir, out_root, engine):
    cpu_export(engine, model_dir, out_root / engine)
    return out_root / engine


@pytest.fixture(scope="session")
def artefact_dirs(standin_dirs, work_dir):
    """(architecture, engine) -> CPU artefact dir, exported on first use."""
    keys = [(a, e) for a in ARCHITECTURES for e in EXPORTED_ENGINES]

    def make(key):
        skip_unless_supported(*key)
        return export_one(standin_dirs[key[0]], work_dir / "engines" / key[0], key[1])

    return LazyMapping(keys, make)


@pytest.fixture(scope="session")
def engines(standin_dirs, artefact_dirs):
    """A loader that keeps each (architecture, engine) loaded once for the whole session."""
    from serving_energy.engines import load_engine

    cache = {}

    def get(architecture: str, engine: str):
        if (architecture, engine) not in cache:
            exported = ENGINE_SPECS[engine].exported
            artefact = artefact_dirs[architecture, engine] if exported else None
            cache[architecture, engine] = load_engine(
                engine, "cpu", standin_dirs[architecture], artefact, THREADS
            )
        return cache[architecture, engine]

    return get
