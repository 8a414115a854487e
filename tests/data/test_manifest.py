"""Model and engine folders are checked against the manifest the rule that made them wrote."""

from __future__ import annotations

import os

import pytest

from serving_energy.data.manifest import (
    MANIFEST_NAME,
    ManifestError,
    tree_sha256,
    verify_manifest,
    write_manifest,
)


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\x01" * 1000)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "tokenizer.json").write_text("{}")
    write_manifest(folder)
    return folder


def test_an_untouched_folder_verifies(folder):
    assert verify_manifest(folder) == "verified: 3 files"
    assert verify_manifest(folder, full=True) == "verified: 3 files, every hash"


def test_a_tampered_file_of_the_same_size_is_caught(folder):
    weights = folder / "model.safetensors"
    weights.write_bytes(b"\x02" + b"\x01" * 999)
    with pytest.raises(ManifestError, match="model.safetensors: content changed"):
        verify_manifest(folder)


def test_tampering_that_restores_the_time_is_caught_by_a_full_check(folder):
    weights = folder / "model.safetensors"
    stat = weights.stat()
    weights.write_bytes(b"\x02" + b"\x01" * 999)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert verify_manifest(folder).startswith("verified")  # sizes and times agree
    with pytest.raises(ManifestError, match="content changed"):
        verify_manifest(folder, full=True)


def test_missing_extra_and_truncated_files_are_each_named(folder):
    (folder / "config.json").unlink()
    (folder / "stray.bin").write_bytes(b"x")
    (folder / "model.safetensors").write_bytes(b"\x01" * 10)
    with pytest.raises(ManifestError) as raised:
        verify_manifest(folder)
    message = str(raised.value)
    assert "config.json: missing" in message
    assert "stray.bin: not in the manifest" in message
    assert "model.safetensors: 10 bytes, the manifest says 1000" in message


def test_a_folder_without_manifest_gets_one_and_says_so(folder):
    (folder / MANIFEST_NAME).unlink()
    assert "trust on first use" in verify_manifest(folder)
    assert (folder / MANIFEST_NAME).is_file()
    assert verify_manifest(folder) == "verified: 3 files"


def test_the_tree_digest_names_the_content_not_the_copy(folder, tmp_path):
    """A run records one SHA-256 per loaded folder: the same files made again (new times) give
    the same digest, any changed byte or name another."""
    digest = tree_sha256(folder)
    assert len(digest) == 64
    again = tmp_path / "again"
    (again / "sub").mkdir(parents=True)
    (again / "model.safetensors").write_bytes(b"\x01" * 1000)
    (again / "config.json").write_text("{}")
    (again / "sub" / "tokenizer.json").write_text("{}")
    os.utime(again / "config.json", ns=(1, 1))
    write_manifest(again)
    assert tree_sha256(again) == digest
    (again / "config.json").write_text("[]")
    write_manifest(again)
    assert tree_sha256(again) != digest
    (again / "sub" / "tokenizer.json").rename(again / "tokenizer.json")
    (again / "config.json").write_text("{}")
    write_manifest(again)
    assert tree_sha256(again) != digest
