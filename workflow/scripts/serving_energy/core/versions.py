"""Which versions of the packages that matter are installed: recorded with every engine, export,
run and replication package. Its own module so that an export's env needs no machine probing."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

# What runs a model: recorded with every engine's info and every export.
ENGINE_PACKAGES = (
    "torch", "transformers", "tokenizers", "optimum", "optimum-onnx", "onnxruntime",
    "onnxruntime-gpu", "optimum-intel", "openvino",
)  # fmt: skip
# What a run's machine record lists: the engines' packages and the workflow's own.
PACKAGES = (*ENGINE_PACKAGES, "fastapi", "uvicorn", "psutil", "nvidia-ml-py", "polars", "snakemake")


def library_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` (absent ones left out)."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions
