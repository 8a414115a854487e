"""Atomic file output: a reader sees the old file or the complete new one, never a torn write.

Raw measurements must never look complete when they are not (docs/design.md, measurement
principle 6), so every output goes to a temporary file in the same folder and is renamed into
place.

Temporary files are created private (``mkstemp`` uses mode 0600, ``mkdtemp`` 0700); before they
are renamed into place they get the mode an ordinary ``open()`` would have given them under the
process's umask, so a shared study folder or the replication archive stays readable by the
co-authors the umask allows.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    return 0o777 & ~current_umask()


def publish_tree(path: Path) -> None:
    """Give a staged folder (and everything inside) the modes the umask allows."""
    path = Path(path)
    modes = {True: dir_mode(), False: file_mode()}
    os.chmod(path, modes[True])
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(Path(root) / name, modes[True])
        for name in files:
            os.chmod(Path(root) / name, modes[False])


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.chmod(temporary_path, file_mode())
        os.replace(temporary_path, path)
    finally:
        temporary_path.unlink(missing_ok=True)


@contextmanager
def staged_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``, removed unless the caller moved it away."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield temporary
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    with staged_dir(path) as temporary:
        yield temporary
        publish_tree(temporary)
        if path.exists():
            shutil.rmtree(path)
        os.replace(temporary, path)


def write_atomic_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_atomic_text(path: Path, text: str) -> None:
    write_atomic_bytes(path, text.encode("utf-8"))


def write_atomic_json(path: Path, payload: Any) -> None:
    write_atomic_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
