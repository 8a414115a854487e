"""A long study keeps going: one failed export leaves the other configurations measured."""

from __future__ import annotations

import shutil
from pathlib import Path

from .conftest import smoke

# Loaded by every Python process of the invocation (PYTHONPATH): the OpenVINO exporter's import
# fails, as a broken export would, and nothing else changes.
BREAK_OPENVINO_EXPORT = """
import builtins
_import = builtins.__import__
def _failing(name, *args, **kwargs):
    if name == "optimum.exporters.openvino":
        raise ImportError("injected by the keep-going test: the OpenVINO exporter is broken")
    return _import(name, *args, **kwargs)
builtins.__import__ = _failing
"""


def test_a_failing_export_leaves_the_other_configurations_measured(
    study_copy: Path, tmp_path: Path, monkeypatch
):
    runs = study_copy / "results" / "runs" / "tiny-gpt2"
    # Take one model's OpenVINO export away, and one run of each other configuration (kept aside).
    shutil.rmtree(study_copy / "results" / "engines" / "tiny-gpt2" / "openvino")
    aside = tmp_path / "aside"
    for configuration in ("torch-cpu", "onnx-cpu", "openvino-cpu"):
        shutil.move(runs / configuration / "rep1", aside / configuration)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(BREAK_OPENVINO_EXPORT)
    monkeypatch.setenv("PYTHONPATH", str(hook))

    result = smoke(study_copy)

    output = result.stdout + result.stderr
    assert result.returncode != 0
    # The default profile keeps going: the runs that need no OpenVINO export were measured.
    for configuration in ("torch-cpu", "onnx-cpu"):
        assert (runs / configuration / "rep1" / "run.json").is_file(), output[-3000:]
    assert not (runs / "openvino-cpu" / "rep1" / "run.json").exists()
    # The end of the invocation names what failed and where its log is.
    log = study_copy / "results" / "logs" / "export" / "tiny-gpt2" / "openvino.log"
    assert "1 job(s) failed in this invocation" in output, output[-3000:]
    assert "injected by the keep-going test" in output, output[-3000:]
    assert str(log.relative_to(study_copy)) in output or str(log) in output
