"""A folder's manifest: every file with its size and SHA-256, written by the rule that made the
folder and checked before a run loads it.

A model or engine folder that changed after it was made (a file replaced, truncated, added or
removed) would be measured as if it were the study's model. Sizes are compared on every check; a
file's hash is computed again when its modification time differs from the manifest's (so a
tampered file is caught without re-hashing gigabytes of untouched weights before every run), or
for every file with ``full=True``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from serving_energy.core.io import write_atomic_text

MANIFEST_NAME = "manifest.json"


class ManifestError(ValueError):
    """A folder's content is not what its manifest says; the message names the file."""


@dataclass(frozen=True)
class FileEntry:
    size_bytes: int
    sha256: str
    mtime_ns: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and path.name != MANIFEST_NAME and not path.name.startswith(".")
    )


def write_manifest(folder: Path) -> Path:
    folder = Path(folder)
    entries = {}
    for path in _files(folder):
        stat = path.stat()
        entries[path.relative_to(folder).as_posix()] = asdict(
            FileEntry(stat.st_size, _sha256(path), stat.st_mtime_ns)
        )
    out = folder / MANIFEST_NAME
    write_atomic_text(out, json.dumps({"files": entries}, indent=2, sort_keys=True) + "\n")
    return out


def verify_manifest(folder: Path, full: bool = False) -> str:
    """Raise ManifestError naming every file that differs; say how the folder was verified.

    A folder made before manifests existed gets one now, from what it holds (trust on first use,
    said so in the returned status, which every run records); from then on it is checked.
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        write_manifest(folder)
        return f"no manifest: recorded its {len(_files(folder))} files now (trust on first use)"
    recorded = {
        name: FileEntry(**entry)
        for name, entry in json.loads(manifest_path.read_text())["files"].items()
    }
    present = {path.relative_to(folder).as_posix(): path for path in _files(folder)}
    problems = [f"{name}: missing" for name in sorted(set(recorded) - set(present))]
    problems += [f"{name}: not in the manifest" for name in sorted(set(present) - set(recorded))]
    for name in sorted(set(recorded) & set(present)):
        entry, stat = recorded[name], present[name].stat()
        if stat.st_size != entry.size_bytes:
            problems.append(f"{name}: {stat.st_size} bytes, the manifest says {entry.size_bytes}")
        elif (full or stat.st_mtime_ns != entry.mtime_ns) and _sha256(
            present[name]
        ) != entry.sha256:
            problems.append(f"{name}: content changed since the folder was made (SHA-256 differs)")
    if problems:
        raise ManifestError(
            f"{folder} is not what the workflow made: {'; '.join(problems)}. Delete the folder "
            "and run the workflow again to make it anew."
        )
    return f"verified: {len(recorded)} files" + (", every hash" if full else "")


def tree_sha256(folder: Path) -> str:
    """One SHA-256 for a folder's content, from its manifest (names, sizes and file hashes; not
    modification times): what a run records of the model and export it loaded, so a removed
    export (export.remove_after_use) is still identified, and an export made again can be
    compared with the one measured."""
    manifest = json.loads((Path(folder) / MANIFEST_NAME).read_text())["files"]
    lines = [
        f"{entry['sha256']}  {entry['size_bytes']}  {name}"
        for name, entry in sorted(manifest.items())
    ]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
