"""A model-loading process imports neither scikit-learn nor SciPy, and generates what it did."""

from __future__ import annotations

import json
import subprocess
import sys

from serving_energy.core.lean_imports import skip_unused_transformers_imports
from tests.helpers import REPO, offline_environment

from .conftest import NEW_TOKENS, PROMPTS, THREADS

# A fresh interpreter: this test process has imported transformers' generation code long ago.
LOAD_AND_GENERATE = """
import json, sys
sys.path.insert(0, {scripts!r})
from serving_energy.engines import load_engine
engine = load_engine("torch", "cpu", {model!r}, None, {threads})
ids = engine.generate({prompt!r}, {new_tokens}).new_token_ids
print(json.dumps({{"ids": ids, "imported": sorted(m for m in ("sklearn", "scipy") if m in sys.modules)}}))
"""


def test_a_server_process_loads_without_sklearn_or_scipy_and_generates_the_same_ids(
    standin_dirs, engines
):
    code = LOAD_AND_GENERATE.format(
        scripts=str(REPO / "workflow" / "scripts"),
        model=str(standin_dirs["llama"]),
        threads=THREADS,
        prompt=PROMPTS[0],
        new_tokens=NEW_TOKENS,
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=offline_environment()
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = json.loads(result.stdout.strip().splitlines()[-1])
    assert fresh["imported"] == []
    # this process imported both when it built the stand-in with all of transformers: same ids
    assert "sklearn" in sys.modules
    assert (
        tuple(fresh["ids"])
        == engines("llama", "torch").generate(PROMPTS[0], NEW_TOKENS).new_token_ids
    )


def test_nothing_is_changed_once_transformers_generation_code_is_imported(engines):
    engines("llama", "torch")  # transformers' generation code is imported
    assert skip_unused_transformers_imports() is False
