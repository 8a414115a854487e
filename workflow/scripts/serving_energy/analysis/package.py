"""The replication package: results/README.md, results/SHA256SUMS and an archive ready for deposit."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import yaml

from serving_energy.analysis.carbon import load_intensity
from serving_energy.core.io import atomic_path, write_atomic_text
from serving_energy.study.layout import RUN_FILES, ResultsLayout, RunKey

ARCHIVE_NAME = "replication-package.zip"
CHECKSUMS_NAME = "SHA256SUMS"
CONFIG_SNAPSHOT = "config.yaml"

FOLDERS = {
    "prompts/": "`prompts.jsonl`: the prompts sent in every run (task_id, prompt, n_tokens).",
    "engines/": "`<model>/<engine>-<provider>/check.json`: equivalence of each engine with torch "
    "(exported models themselves are left out of the archive; the workflow rebuilds them).",
    "runs/": "`<model>/<engine>-<provider>/rep<N>/`: one folder per measured run: `run.json` "
    "(metadata, metrics and the method of every energy figure), `requests.parquet` (one row per "
    "request), `timeline.parquet` (every meter sample and phase marker on one clock).",
    "failed/": "failed, interrupted or unfinished attempts, each with `failure.json` (the reason) "
    "and its partial data and logs; never part of the analysis.",
    "superseded/": "complete runs that a later measurement of the same run replaced, each with "
    "`superseded.json` (why); kept for the record, never part of the analysis.",
    "metrics/": "`runs.parquet`/`runs.csv` (one row per run, with `valid` and "
    "`invalid_reasons`), `excluded_runs.csv` (runs left out of the analysis, with reasons), "
    "`failed_runs.csv`, `superseded_runs.csv`, `equivalence.csv`.",
    "calibration/": "`<host>.json`: each measuring host's idle, measured by its first run.",
    "stats/": "tidy tables of every statistical test (`tests.csv`) and post-hoc pair "
    "(`posthoc.csv`), with LaTeX versions.",
    "tables/": "the paper's Tables 4 and 5 (CSV, LaTeX) and the saving ranges quoted in the text.",
    "figures/": "box plots by size category and configuration, per-model box plots, run timelines.",
    "logs/": "the log of every workflow job.",
}


@dataclass(frozen=True)
class PackageInputs:
    results_dir: Path
    study: Mapping
    config: Mapping
    command: str
    runs: pl.DataFrame
    failed: pl.DataFrame
    equivalence: pl.DataFrame
    software: Mapping[str, str]
    planned_runs: Sequence[Mapping] = ()
    excluded: pl.DataFrame | None = None  # runs the analysis left out, with their reasons
    analysis_method: str | None = None


class InconsistentPackage(RuntimeError):
    """The tables list a run whose files are not there: the package would contradict itself."""


def run_keys(runs: pl.DataFrame) -> list[RunKey]:
    return [
        RunKey.of(model, engine, provider, rep)
        for model, engine, provider, rep in runs.select(
            "model", "engine", "provider", "rep"
        ).iter_rows()
    ]


def check_runs_present(results_dir: Path, runs: pl.DataFrame) -> None:
    """Refuse to package while ``runs`` lists a run whose folder or files are missing."""
    layout = ResultsLayout(Path(results_dir))
    missing = [
        f"{layout.run_dir(key).relative_to(layout.root).as_posix()}/{name}"
        for key in run_keys(runs)
        for name in RUN_FILES
        if not (layout.run_dir(key) / name).is_file()
    ]
    if missing:
        shown = "\n  ".join(missing[:20]) + ("\n  ..." if len(missing) > 20 else "")
        raise InconsistentPackage(
            f"the merged tables list {len(missing)} run files that are not in {results_dir}:\n  "
            f"{shown}\nRun the workflow again without targets to measure them again (it "
            "re-makes missing runs), or restore them from a copy."
        )


def missing_runs(runs: pl.DataFrame, planned: Sequence[Mapping]) -> list[str]:
    """Planned runs of the study that are not (yet) in the tables."""
    present = set(run_keys(runs))
    return [
        str(key)
        for key in (RunKey.of(p["model"], p["engine"], p["provider"], p["rep"]) for p in planned)
        if key not in present
    ]


def packaged_files(results_dir: Path, exclude: Iterable[Path] = ()) -> list[Path]:
    """Files of ``results_dir`` that belong in the package, sorted, relative to it.

    ``exclude`` names files still being written while packaging (the packaging job's own log),
    whose checksum could not hold.
    """
    results_dir = Path(results_dir)
    layout = ResultsLayout(results_dir)
    excluded = {Path(path).resolve() for path in exclude}
    files = []
    for path in sorted(results_dir.rglob("*")):
        relative = path.relative_to(results_dir)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if path.resolve() in excluded:
            continue
        if relative.name in (ARCHIVE_NAME, CHECKSUMS_NAME):
            continue
        # Exports are large and rebuilt by the workflow from the pinned models; checks stay.
        if layout.is_export_file(relative):
            continue
        files.append(relative)
    return files


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(results_dir: Path, files: Iterable[Path], out_path: Path) -> None:
    lines = [f"{sha256_file(Path(results_dir) / f)}  {f.as_posix()}\n" for f in files]
    write_atomic_text(out_path, "".join(lines))


def write_archive(results_dir: Path, files: Iterable[Path], out_path: Path) -> None:
    with atomic_path(out_path) as temporary:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for relative in files:
                archive.write(Path(results_dir) / relative, Path("results") / relative)


def energy_methods(runs: pl.DataFrame) -> list[str]:
    """One line per (component, method) with its run count: what was measured, what estimated."""
    lines = []
    for component in ("cpu", "gpu", "global"):
        column = f"energy_{component}_method"
        if column not in runs.columns:
            continue
        counts = runs.group_by(column).len().sort(column, nulls_last=True)
        for method, count in counts.iter_rows():
            label = (
                method if method is not None else "unavailable (null, with a reason in run.json)"
            )
            lines.append(f"- {component.upper()} energy: {label} — {count} runs")
    return lines


def _excluded_section(excluded: pl.DataFrame | None) -> str:
    if excluded is None or excluded.height == 0:
        return "None: every run in `metrics/runs.csv` is in the tests, tables and figures."
    rows = [
        f"{model} {configuration} rep {rep}: {reasons}"
        for model, configuration, rep, reasons in excluded.select(
            "model", "configuration", "rep", "reasons"
        ).iter_rows()
    ]
    return (
        f"{excluded.height} runs are measured and kept but left out of the tests, tables and "
        "figures (`metrics/excluded_runs.csv`):\n" + _bullets(rows)
    )


def _bullets(values: Iterable[str]) -> str:
    text = "\n".join(f"- {value}" for value in values)
    return text or "- none"


def _carbon_section(runs: pl.DataFrame, setting: Mapping) -> str:
    """Where the emissions come from, when the study converted its energy (carbon.*)."""
    intensity = load_intensity(setting) if setting.get("intensity_g_per_kwh") is not None else None
    if intensity is None or "co2e_g" not in runs.columns:
        return ""
    carbon = intensity.describe()
    basis = (
        runs["co2e_basis"].value_counts(sort=True).iter_rows()
        if "co2e_basis" in runs.columns
        else []
    )
    counts = ", ".join(f"{n} runs from {b} energy" for b, n in basis)
    return (
        "## Emissions\n"
        f"`co2e_g` (runs.csv and the size-category tables' CSVs) is each run's global energy "
        f"times the carbon intensity of the grid: {carbon}. {counts}; CO2e from an estimated "
        "energy is an estimate too."
    )


def render_readme(inputs: PackageInputs) -> str:
    runs, study = inputs.runs, inputs.study
    standins = int(runs["standin"].sum()) if "standin" in runs.columns else 0
    hosts = sorted({f"{h} ({c})" for h, c in runs.select("hostname", "cpu_model").iter_rows()})
    gpus = (
        sorted({g for g in runs["gpu_name"].to_list() if g}) if "gpu_name" in runs.columns else []
    )
    excluded = study.get("excluded_configurations") or {}
    failed_checks = (
        inputs.equivalence.filter(~pl.col("passed"))
        if "passed" in inputs.equivalence.columns
        else inputs.equivalence.head(0)
    )
    missing = missing_runs(runs, inputs.planned_runs) if inputs.planned_runs else []
    if not inputs.planned_runs:
        completeness = ""
    elif not missing:
        completeness = f"- complete: all {len(inputs.planned_runs)} planned runs are here"
    else:
        shown = ", ".join(missing[:20]) + (
            f", and {len(missing) - 20} more" if len(missing) > 20 else ""
        )
        completeness = (
            f"- **incomplete: {len(missing)} of {len(inputs.planned_runs)} planned runs are not "
            f"measured yet**: {shown}"
        )
    sections = [
        f"# Replication package: {study.get('name')}",
        str(study.get("description") or ""),
        f"Made {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by the serving-energy "
        "Snakemake workflow.",
        "## How it was made\n"
        f"```\n{inputs.command}\n```\n"
        f"The complete configuration is in `{CONFIG_SNAPSHOT}`. Every run records the git commit "
        "of the workflow, the SHA-256 of the configuration, the machine and library versions."
        + (
            f" The statistics, tables and figures were made with the **{inputs.analysis_method}** "
            "analysis method (`analysis.method`; see the workflow's docs/analysis.md)."
            if inputs.analysis_method
            else ""
        ),
        "## What each folder holds\n" + "\n".join(f"- `{k}` {v}" for k, v in FOLDERS.items()),
        "## The study\n"
        f"- {runs.height} runs: {runs['model'].n_unique()} models × "
        f"{runs['configuration'].n_unique()} configurations × up to {study.get('repetitions')} "
        "repetitions\n"
        f"- configurations: {', '.join(study.get('configurations', []))}\n"
        "- excluded configurations: "
        + (", ".join(f"{label} ({why})" for label, why in excluded.items()) or "none")
        + (f"\n{completeness}" if completeness else ""),
        "## Measured or estimated\n"
        + "\n".join(energy_methods(runs))
        + "\n\nAn estimate is never a measurement: it comes from CPU load and a configured power "
        "(see `run.json` → `metrics.energy_cpu_sensor`).",
        _carbon_section(runs, inputs.config.get("carbon") or {}),
        "## Stand-in models\n"
        + (
            f"**{standins} of {runs.height} runs used random-weight stand-in models**: their energy "
            "and time reflect the stand-in's geometry; their generated text is meaningless."
            if standins
            else "None: every run used a real model."
        ),
        "## Hardware\n" + _bullets(hosts) + ("\n\nGPUs:\n" + _bullets(gpus) if gpus else ""),
        "## Software\n"
        + _bullets(f"{name} {version}" for name, version in sorted(inputs.software.items())),
        "## Runs left out of the analysis\n" + _excluded_section(inputs.excluded),
        "## Failed attempts\n"
        + (
            f"{inputs.failed.height} failed attempts are listed in `metrics/failed_runs.csv` and "
            "kept under `failed/`; none of them is part of the analysis."
            if inputs.failed.height
            else "None."
        ),
        "## Equivalence of engines\n"
        + (
            "Configurations whose greedy tokens disagreed with torch:\n"
            + _bullets(
                f"{m} {c}" for m, c in failed_checks.select("model", "configuration_id").iter_rows()
            )
            if failed_checks.height
            else "Every checked engine generated the same greedy tokens as torch "
            "(`metrics/equivalence.csv`)."
        ),
        "## Integrity\n"
        f"`{CHECKSUMS_NAME}` lists the SHA-256 of every packaged file "
        f"(`sha256sum -c {CHECKSUMS_NAME}` inside `results/`); `{ARCHIVE_NAME}` holds them all, "
        "ready for deposit (e.g. Zenodo).",
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def write_package(
    inputs: PackageInputs,
    readme_path: Path,
    checksums_path: Path,
    archive_path: Path,
    exclude: Iterable[Path] = (),
) -> Sequence[Path]:
    results_dir = Path(inputs.results_dir)
    check_runs_present(results_dir, inputs.runs)
    write_atomic_text(
        results_dir / CONFIG_SNAPSHOT, yaml.safe_dump(dict(inputs.config), sort_keys=False)
    )
    write_atomic_text(readme_path, render_readme(inputs))
    files = packaged_files(results_dir, exclude)
    write_checksums(results_dir, files, checksums_path)
    write_archive(results_dir, [*files, Path(CHECKSUMS_NAME)], archive_path)
    return files
