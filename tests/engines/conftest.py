"""Session-scoped tiny stand-ins and their exports: each is built and exported once per run."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

ARCHITECTURES = ("gpt2", "gpt_bigcode", "gpt_neox", "bloom", "llama", "gemma", "phi")
EXPORTED_ENGINES = ("onnx", "openvino", "torchscript")
TINY = {"n_layers": 2, "hidden_size": 64, "n_heads": 4, "tokenizer": "bpe-humaneval", "seed": 0}
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


@pytest.fixture(scope="session")
def standin_dirs(work_dir):
    """architecture -> directory of a tiny random-weight stand-in."""
    from serving_energy.standins import build_standin

    dirs = {}
    for architecture in ARCHITECTURES:
        out_dir = work_dir / "models" / architecture
        build_standin(architecture, out_dir, **TINY)
        dirs[architecture] = out_dir
    return dirs


def export_all(model_dir, out_root):
    """engine -> artefact dir for the three exported engines on the CPU."""
    from serving_energy.export import export_onnx, export_openvino, export_torchscript

    out = {
        "onnx": out_root / "onnx",
        "openvino": out_root / "openvino",
        "torchscript": out_root / "torchscript-cpu",
    }
    export_onnx(model_dir, out["onnx"])
    export_openvino(model_dir, out["openvino"])
    export_torchscript(model_dir, out["torchscript"], "cpu")
    return out


@pytest.fixture(scope="session")
def artefact_dirs(standin_dirs, work_dir):
    """(architecture, engine) -> exported artefact dir."""
    dirs = {}
    for architecture, model_dir in standin_dirs.items():
        for engine, path in export_all(model_dir, work_dir / "engines" / architecture).items():
            dirs[architecture, engine] = path
    return dirs


@pytest.fixture(scope="session")
def engines(standin_dirs, artefact_dirs):
    """A loader that keeps each (architecture, engine) loaded once for the whole session."""
    from serving_energy.engines import load_engine

    cache = {}

    def get(architecture: str, engine: str):
        if (architecture, engine) not in cache:
            artefact = None if engine == "torch" else artefact_dirs[architecture, engine]
            cache[architecture, engine] = load_engine(
                engine, "cpu", standin_dirs[architecture], artefact, THREADS
            )
        return cache[architecture, engine]

    return get
