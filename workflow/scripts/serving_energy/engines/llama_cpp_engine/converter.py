"""llama.cpp's HF-to-GGUF converter, from the sdist of the installed llama-cpp-python.

No wheel ships the converter: it lives in the sdist as ``vendor/llama.cpp/convert_hf_to_gguf.py``
with its ``conversion/`` package and the matching ``gguf-py/``. The converter of the same release
as the runtime is extracted once into a cache folder and reused; ``LLAMA_CPP_CONVERTER_DIR`` names
an existing copy instead (an offline machine, or a llama.cpp checkout).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

CONVERTER_DIR_VARIABLE = "LLAMA_CPP_CONVERTER_DIR"
CONVERTER_SCRIPT = "convert_hf_to_gguf.py"
# What the converter needs from the sdist's vendor/llama.cpp/ (and nothing else of its 76 MB).
_NEEDED = (CONVERTER_SCRIPT, "conversion", "gguf-py", "LICENSE")


class ConverterUnavailable(RuntimeError):
    """llama.cpp's converter cannot be found or fetched; the message says how to provide it."""


def runtime_version() -> str:
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError as exc:
        raise ConverterUnavailable(
            "llama-cpp-python is not installed: the GGUF converter is taken from its release"
        ) from exc


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "serving-energy" / "llama.cpp-converter"


def is_converter_dir(directory: Path) -> bool:
    return (directory / CONVERTER_SCRIPT).is_file() and (directory / "gguf-py").is_dir()


def converter_dir(version: str | None = None) -> Path:
    """The folder holding ``convert_hf_to_gguf.py``, ``conversion/`` and ``gguf-py/``."""
    named = os.environ.get(CONVERTER_DIR_VARIABLE)
    if named:
        if not is_converter_dir(Path(named)):
            raise ConverterUnavailable(
                f"{CONVERTER_DIR_VARIABLE}={named} holds no {CONVERTER_SCRIPT} with gguf-py/ "
                "beside it (point it at llama.cpp's source folder)"
            )
        return Path(named)
    version = version or runtime_version()
    target = cache_root() / version
    if not is_converter_dir(target):
        fetch_converter(version, target)
    return target


def fetch_converter(version: str, target: Path) -> None:
    """Download the llama-cpp-python sdist of ``version`` from the package index and keep the
    converter's files; written aside and renamed, so a failed fetch leaves nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tmp_dir = Path(tmp)
        download = subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--no-binary", ":all:", f"llama-cpp-python=={version}", "-d", str(tmp_dir),
            ],
            capture_output=True,
            text=True,
        )  # fmt: skip
        archives = sorted(tmp_dir.glob("llama_cpp_python-*.tar.gz"))
        if download.returncode != 0 or not archives:
            raise ConverterUnavailable(
                f"cannot fetch llama-cpp-python=={version}'s sdist for its GGUF converter "
                f"(pip download: {download.stderr.strip()[-500:] or 'no archive'}); set "
                f"{CONVERTER_DIR_VARIABLE} to a llama.cpp source folder instead"
            )
        extracted = tmp_dir / "converter"
        extract_converter(archives[0], extracted)
        if target.exists():
            shutil.rmtree(target)
        os.replace(extracted, target)


def extract_converter(archive: Path, out_dir: Path) -> None:
    with tarfile.open(archive) as tar:
        (root,) = {member.name.split("/", 1)[0] for member in tar.getmembers()}
        prefix = f"{root}/vendor/llama.cpp/"
        members = [
            m
            for m in tar.getmembers()
            if m.name.startswith(prefix)
            and m.name[len(prefix) :].split("/", 1)[0] in _NEEDED
            and (m.isfile() or m.isdir())
        ]
        for member in members:
            member.name = member.name[len(prefix) :]
        tar.extractall(out_dir, members=members, filter="data")
    if not is_converter_dir(out_dir):
        raise ConverterUnavailable(f"{archive} holds no vendor/llama.cpp/{CONVERTER_SCRIPT}")
