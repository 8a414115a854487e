"""Which versions of the packages that matter are installed: recorded with every engine, export,
run and replication package. Its own module so that an export's env needs no machine probing."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

# The workflow's own packages; the engines' are in each engine's spec (study.vocabulary's
# ENGINE_PACKAGES), and a run's machine record lists both (study.vocabulary.RECORDED_PACKAGES).
WORKFLOW_PACKAGES = ("fastapi", "uvicorn", "psutil", "nvidia-ml-py", "polars", "snakemake")


def library_versions(packages: Sequence[str]) -> dict[str, str]:
    """Installed versions of ``packages`` (absent ones left out)."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions
