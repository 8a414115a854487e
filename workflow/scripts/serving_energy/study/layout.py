"""The results/ layout: the one place that says where each kind of result lives.

Rules, scripts, the merge and the package all ask this module for paths, and records carry their
own identity (model, configuration, repetition) so that nothing parses it back out of a path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from serving_energy.study.vocabulary import (
    CONFIGURATION_ID,
    CONFIGURATIONS,
    EXPORTED_ENGINES,
    EXPORTED_PER_PROVIDER,
    Configuration,
)

RESULTS = Path("results")
RUN_FILES = ("run.json", "requests.parquet", "timeline.parquet")
FAILURE_RECORD = "failure.json"
SUPERSEDED_RECORD = "superseded.json"
# Templates of every path below, formatted for one run or engine, or left as they are for the
# rules: their fields are the rules' readable wildcards.
RUN_KEY_FOLDER = "{model}/" + CONFIGURATION_ID + "/rep{rep}"  # under runs/, failed/, superseded/
# An export's folder under engines/{model}/: one per engine, or per provider where the engine's
# artefact is specific to its device.
EXPORT_ARTEFACT = "{engine}"
EXPORT_ARTEFACT_PER_PROVIDER = "{engine}/{provider}"
EXPORT_FOLDER = "engines/{model}/" + EXPORT_ARTEFACT
EXPORT_FOLDER_PER_PROVIDER = "engines/{model}/" + EXPORT_ARTEFACT_PER_PROVIDER
CHECK_FILE = "engines/{model}/" + CONFIGURATION_ID + "/check.json"
EXPORT_ARTEFACT_FOLDER = "engines/{model}/{artefact}"


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
        return Path(_format(RUN_KEY_FOLDER, self.model, self.configuration, rep=self.rep))

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
        """The record of every failed attempt (each names the run it belongs to)."""
        yield from sorted((self.root / "failed").glob(f"{_ANY_RUN}/*/{FAILURE_RECORD}"))

    def superseded_records(self) -> Iterator[Path]:
        yield from sorted((self.root / "superseded").glob(f"{_ANY_RUN}/*/{SUPERSEDED_RECORD}"))

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
        """What an engine loads besides the model folder (None for the reference, which loads the
        model itself); one folder per provider where the vocabulary says so."""
        if not configuration.exported:
            return None
        return self.root / _format(_export_template(configuration.engine), model, configuration)

    def check_path(self, model: str, configuration: Configuration) -> Path | None:
        """The engine's equivalence check against the reference (None for the reference)."""
        if configuration.is_reference:
            return None
        return self.root / _format(CHECK_FILE, model, configuration)

    def is_export_file(self, relative: Path) -> bool:
        """Whether a file (relative to the root) belongs to an engine's export, not to a check."""
        parts = Path(relative).parts
        return len(parts) >= 3 and parts[0] == "engines" and parts[2] in EXPORTED_ENGINES

    # -- Snakemake patterns ---------------------------------------------------------------------
    def run_pattern(self, name: str) -> str:
        """A run file with the rules' wildcards, e.g. results/runs/{model}/.../run.json."""
        return f"{self.root.as_posix()}/runs/{RUN_KEY_FOLDER}/{name}"

    def export_pattern(self) -> str:
        """Every export folder, with the export rule's wildcards: {model} and {artefact} (one of
        ``export_artefacts()``: ``onnx``, ``torchscript/cpu``, ...)."""
        return f"{self.root.as_posix()}/{EXPORT_ARTEFACT_FOLDER}"

    def check_pattern(self) -> str:
        return f"{self.root.as_posix()}/{CHECK_FILE}"


def _export_template(engine: str) -> str:
    return EXPORT_FOLDER_PER_PROVIDER if engine in EXPORTED_PER_PROVIDER else EXPORT_FOLDER


def export_artefact(configuration: Configuration) -> str:
    """The ``{artefact}`` of a configuration's export: its folder under ``engines/{model}/``
    (``onnx``; ``torchscript/cpu`` where an export is made per provider)."""
    if not configuration.exported:
        raise ValueError(f"{configuration.label} loads the model folder itself: no export")
    template = (
        EXPORT_ARTEFACT_PER_PROVIDER
        if configuration.engine in EXPORTED_PER_PROVIDER
        else EXPORT_ARTEFACT
    )
    return template.format(engine=configuration.engine, provider=configuration.provider)


def export_artefacts(configurations: Iterable[Configuration] = CONFIGURATIONS) -> tuple[str, ...]:
    """Every ``{artefact}`` the configurations export, once each, in their order."""
    return tuple(dict.fromkeys(export_artefact(c) for c in configurations if c.exported))


def parse_export_artefact(artefact: str) -> tuple[str, str | None]:
    """(engine, provider) of an ``{artefact}``; the provider is None where one export serves
    every provider. An unknown one is a ValueError naming those that exist."""
    engine, _, provider = artefact.partition("/")
    known = export_artefacts()
    if artefact not in known:
        raise ValueError(f"no export {artefact!r}; the exports are {', '.join(known)}")
    return engine, provider or None


def _format(template: str, model: str, configuration: Configuration, **fields) -> str:
    return template.format(
        model=model, engine=configuration.engine, provider=configuration.provider, **fields
    )


_ANY_RUN = RUN_KEY_FOLDER.format(model="*", engine="*", provider="*", rep="*")
