"""A study larger than the disk: exports removed once used, their checksums kept by the runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from serving_energy.data.manifest import tree_sha256

from .conftest import smoke

pytestmark = pytest.mark.e2e


def test_an_export_is_removed_once_its_runs_are_measured_and_its_checksum_kept(
    study_copy: Path, tmp_path: Path
):
    engines = study_copy / "results" / "engines"
    measured = engines / "tiny-gpt2" / "onnx"
    untouched = engines / "tiny-llama" / "onnx"
    digest = tree_sha256(measured)
    run = study_copy / "results" / "runs" / "tiny-gpt2" / "onnx-cpu" / "rep1"
    shutil.move(run, tmp_path / "rep1")  # one run of that export is measured again
    rep2 = run.parent / "rep2" / "run.json"
    rep2_before = rep2.read_bytes()

    result = smoke(
        study_copy,
        "--config",
        "export={remove_after_use: true}",
        "targets={models: [tiny-gpt2], configurations: [onnx-cpu]}",
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "ok", record["failure"]
    # The run says which export it loaded, though the export is gone now.
    assert record["inputs"]["engine_sha256"] == digest
    assert len(record["inputs"]["model_sha256"]) == 64
    assert not measured.exists(), "the export its runs used is removed after them"
    # An export that no job of the invocation loaded stays as it was.
    assert untouched.is_dir()
    # Its other, already measured run is not measured again.
    assert rep2.read_bytes() == rep2_before
    assert json.loads(rep2_before)["inputs"]["engine_sha256"] == digest
