"""Model sources: a pinned Hub snapshot (download injected: tests never download) and stand-ins."""

from __future__ import annotations

import json
import shutil

import pytest

from serving_energy.data.model_sources import fetch_model


def fake_download(weights: bool = True):
    calls = []

    def download(repo_id, revision, local_dir, allow_patterns):
        calls.append((repo_id, revision, allow_patterns))
        folder = __import__("pathlib").Path(local_dir)
        (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
        if weights:
            (folder / "model.safetensors").write_bytes(b"weights")
        return local_dir

    return download, calls


def test_snapshot_records_the_resolved_commit(tmp_path):
    download, calls = fake_download()
    snapshot = fetch_model(
        "org/model", "main", tmp_path / "model", download=download,
        resolve_commit=lambda hf_id, revision: "a" * 40,
    )  # fmt: skip
    assert snapshot.commit == "a" * 40
    assert calls[0][:2] == ("org/model", "main")
    recorded = json.loads((tmp_path / "model" / "snapshot.json").read_text())
    assert recorded == {
        "hf_id": "org/model",
        "revision": "main",
        "commit": "a" * 40,
        "trust_remote_code": False,
    }


def test_failed_download_names_the_model_and_leaves_nothing(tmp_path):
    def offline(**_):
        raise OSError("network unreachable")

    with pytest.raises(
        RuntimeError, match="could not download org/model at revision abc.*HF_TOKEN"
    ):
        fetch_model(
            "org/model", "abc", tmp_path / "model", download=offline, resolve_commit=lambda *_: None
        )
    assert not (tmp_path / "model").exists()
    assert not list(tmp_path.iterdir())  # no staging folder left behind


def test_snapshot_without_weights_is_refused(tmp_path):
    download, _ = fake_download(weights=False)
    with pytest.raises(RuntimeError, match="no weights"):
        fetch_model(
            "org/model",
            "abc",
            tmp_path / "model",
            download=download,
            resolve_commit=lambda *_: None,
        )
    assert not (tmp_path / "model").exists()


def test_existing_folder_is_replaced_only_on_success(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old").write_text("previous snapshot")

    def broken(**_):
        raise OSError("boom")

    with pytest.raises(RuntimeError):
        fetch_model("org/model", "abc", target, download=broken, resolve_commit=lambda *_: None)
    assert (target / "old").read_text() == "previous snapshot"
    shutil.rmtree(target)
