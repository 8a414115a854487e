"""The results/ layout: the one place that says where each kind of result lives.

Rules, scripts, the merge and the package all ask this module for paths, and records carry their
own identity (model, configuration, repetition) so that nothing parses it back out of a path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from serving_energy.study.design import Configuration

RESULTS = Path("results")
RUN_FILES = ("run.json", "requests.parquet", "timeline.parquet")
FAILURE_RECORD = "failure.json"
SUPERSEDED_RECORD = "superseded.json"
# Snakemake's view of one run folder; the wildcard names are the rules' readable wildcards.
RUN_PATTERN = "runs/{model}/{engine}-{provider}/rep{rep}"


@dataclass(frozen=True, order=True)
class RunKey:
    """Which run: one model in one configuration, one repetition."""

    model: str
    configuration: Configuration
    rep: int

    @classmethod
    def of(cls, model: str, engine: str, provider: str, rep: int | str) -> RunKey:
        return cls(model, Configuration(engine, provider), int(rep))

    @property
    def relative(self) -> Path:
        """The key as a relative folder, the same under runs/, failed/ and superseded/."""
        return Path(self.model) / self.configuration.id / f"rep{self.rep}"

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "engine": self.configuration.engine,
            "provider": self.configuration.provider,
            "configuration": self.configuration.label,
            "configuration_id": self.configuration.id,
            "rep": self.rep,
        }

    def __str__(self) -> str:
        return f"{self.model} {self.configuration.label} rep {self.rep}"


@dataclass(frozen=True)
class ResultsLayout:
    root: Path = RESULTS

    # -- measured runs --------------------------------------------------------------------------
    def run_dir(self, key: RunKey) -> Path:
        return self.root / "runs" / key.relative

    def run_record(self, key: RunKey) -> Path:
        return self.run_dir(key) / "run.json"

    def failed_dir(self, key: RunKey) -> Path:
        """Failed or interrupted attempts of this run, one sub-folder per attempt."""
        return self.root / "failed" / key.relative

    def superseded_dir(self, key: RunKey) -> Path:
        """Earlier complete runs that a new measurement replaced, one sub-folder each."""
        return self.root / "superseded" / key.relative

    def failure_records(self) -> Iterator[Path]:
        yield from sorted((self.root / "failed").glob(f"*/*/rep*/*/{FAILURE_RECORD}"))

    def superseded_records(self) -> Iterator[Path]:
        yield from sorted((self.root / "superseded").glob(f"*/*/rep*/*/{SUPERSEDED_RECORD}"))

    def calibration(self, hostname: str) -> Path:
        """The idle calibration of one measuring host (made by its first run)."""
        return self.root / "calibration" / hostname / "idle.json"

    def bandwidth_calibration(self, hostname: str, threads: int) -> Path:
        """The memory bandwidth of one measuring host at one thread count (the roofline's bound)."""
        return self.root / "calibration" / hostname / f"bandwidth-{threads}-threads.json"

    # -- inputs of runs -------------------------------------------------------------------------
    @property
    def prompts(self) -> Path:
        return self.root / "prompts" / "prompts.jsonl"

    @property
    def prompts_manifest(self) -> Path:
        return self.root / "prompts" / "prompts.manifest.json"

    def export_dir(self, model: str, configuration: Configuration) -> Path | None:
        """What an engine loads besides the model folder (None for torch, which loads the model).

        TorchScript traces are specific to the device they were traced on, so they are kept per
        provider; ONNX and OpenVINO exports serve every provider.
        """
        engine = configuration.engine
        if engine == "torch":
            return None
        if engine == "torchscript":
            return self.root / "engines" / model / engine / configuration.provider
        return self.root / "engines" / model / engine

    def check_path(self, model: str, configuration: Configuration) -> Path | None:
        """The engine's equivalence check against torch (None for torch, the reference)."""
        if configuration.engine == "torch":
            return None
        return self.root / "engines" / model / configuration.id / "check.json"

    # -- Snakemake patterns ---------------------------------------------------------------------
    def run_pattern(self, name: str) -> str:
        """A run file with the rules' wildcards, e.g. results/runs/{model}/.../run.json."""
        return f"{self.root.as_posix()}/{RUN_PATTERN}/{name}"
