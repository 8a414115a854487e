"""Where an attempt leaves its files: provisional record, failure, publication, superseding."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from serving_energy.core.io import write_atomic_text
from serving_energy.serving.run_store import UNFINISHED, begin_attempt, keep_failure, publish_run
from serving_energy.study.layout import RUN_FILES, ResultsLayout, RunKey

KEY = RunKey.of("m", "onnx", "cpu", 2)


def write_files(folder: Path) -> None:
    (folder / "requests.parquet").write_bytes(b"requests")
    (folder / "timeline.parquet").write_bytes(b"timeline")


def record(**identity) -> dict:
    return {"status": "ok", **KEY.to_dict(), "identity": {"generation": {"n": 1}, **identity}}


def test_an_attempt_is_a_failure_until_it_says_otherwise(tmp_path):
    attempt = begin_attempt(ResultsLayout(tmp_path), KEY)
    provisional = json.loads((attempt.folder / "failure.json").read_text())
    assert provisional["status"] == "unfinished" and provisional["failure"] == UNFINISHED
    assert provisional["model"] == "m" and provisional["configuration_id"] == "onnx-cpu"
    assert provisional["rep"] == 2 and provisional["pid"] == os.getpid()
    assert attempt.folder.parent == tmp_path / "failed" / "m" / "onnx-cpu" / "rep2"


def test_a_failure_replaces_the_provisional_record_and_keeps_data_and_logs(tmp_path):
    attempt = begin_attempt(ResultsLayout(tmp_path), KEY)
    log = tmp_path / "job.log"
    log.write_text("what happened")
    folder = keep_failure(
        attempt, {"status": "failed", "failure": "boom"}, write_files, {"measure.log": log}
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "failure.json", "measure.log", "requests.parquet", "timeline.parquet"
    ]  # fmt: skip
    kept = json.loads((folder / "failure.json").read_text())
    assert kept["failure"] == "boom" and kept["attempt"]["attempt_id"] == attempt.attempt_id


def test_a_failure_is_recorded_even_when_writing_its_data_fails(tmp_path):
    attempt = begin_attempt(ResultsLayout(tmp_path), KEY)

    def broken(folder: Path) -> None:
        raise OSError("disk full")

    try:
        keep_failure(attempt, {"status": "failed", "failure": "boom"}, broken)
    except OSError:
        pass
    assert json.loads((attempt.folder / "failure.json").read_text())["failure"] == "boom"


def test_publishing_places_the_run_and_leaves_no_failure_record(tmp_path):
    layout = ResultsLayout(tmp_path)
    layout.run_dir(KEY).mkdir(parents=True)  # Snakemake makes the empty folder before the job
    attempt = begin_attempt(layout, KEY)
    assert publish_run(attempt, record(), write_files) is None
    assert sorted(p.name for p in layout.run_dir(KEY).iterdir()) == sorted(RUN_FILES)
    assert not (tmp_path / "failed").exists()
    assert not (tmp_path / "superseded").exists()


def test_a_replaced_run_is_moved_aside_whole_with_the_changed_settings(tmp_path):
    layout = ResultsLayout(tmp_path)
    publish_run(begin_attempt(layout, KEY), record(), write_files)
    old = {p.name: p.read_bytes() for p in layout.run_dir(KEY).iterdir()}
    moved = publish_run(begin_attempt(layout, KEY), record(generation={"n": 2}), write_files)
    assert {p.name: p.read_bytes() for p in moved.iterdir() if p.name != "superseded.json"} == old
    why = json.loads((moved / "superseded.json").read_text())
    assert why["reason"] == "measurement settings changed: generation.n: 1 -> 2"
    assert why["changes"] == {"generation.n": [1, 2]}
    assert json.loads(layout.run_record(KEY).read_text())["identity"]["generation"] == {"n": 2}


def test_an_incomplete_run_folder_is_superseded_as_incomplete(tmp_path):
    layout = ResultsLayout(tmp_path)
    layout.run_dir(KEY).mkdir(parents=True)
    (layout.run_dir(KEY) / "requests.parquet").write_bytes(b"half")
    moved = publish_run(begin_attempt(layout, KEY), record(), write_files)
    assert (moved / "requests.parquet").read_bytes() == b"half"
    assert json.loads((moved / "superseded.json").read_text())["reason"].startswith("incomplete")


def test_outputs_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        write_atomic_text(tmp_path / "shared.txt", "x")
        layout = ResultsLayout(tmp_path)
        publish_run(begin_attempt(layout, KEY), record(), write_files)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "shared.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE(layout.run_dir(KEY).stat().st_mode) == 0o755
    assert stat.S_IMODE(layout.run_record(KEY).stat().st_mode) == 0o644
