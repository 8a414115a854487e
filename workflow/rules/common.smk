import os
import re
import shutil
import time
import sys
from pathlib import Path

from snakemake.settings.types import ExecMode, RerunTrigger
from snakemake_interface_executor_plugins.settings import DeploymentMethod

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from serving_energy.core.failures import failure_summary
from serving_energy.data.dataset import expected_prompt_count
from serving_energy.study.layout import (
    ResultsLayout,
    RunKey,
    export_artefacts,
    parse_export_artefact,
)
from serving_energy.core.machine import gpu_present
from serving_energy.study.rerun_forecast import forecast, summary
from serving_energy.study.design import (
    MODEL_DESCRIPTION_KEYS,
    apply_cuda_policy,
    check_config,
    configured_runs,
    engine_options,
    measurement_identity,
    model_priorities,
    run_priorities,
)
from serving_energy.study.footprint import export_stage, job_memory_mb, machine_memory_mb
from serving_energy.study.geometries import resolve_standin_spec
from serving_energy.study.plan import model_parameters as plan_model_parameters
from serving_energy.study.vocabulary import (
    ENGINE_SPECS,
    ENGINES,
    CHECKED_ENGINES,
    PROVIDERS,
    ConfigError,
    Configuration,
)

# --use-conda without conda: Snakemake's own "Error running conda info" does not say what to do.
_frontend = workflow.deployment_settings.conda_frontend or "conda"
if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method and not (
    shutil.which(_frontend) or shutil.which("conda") or shutil.which("mamba")
):
    raise WorkflowError(
        f"--use-conda needs {_frontend} on PATH and none was found: install Miniforge "
        "(https://conda-forge.org/download) or run without --use-conda from the tested venv "
        "(python3 -m venv .venv && .venv/bin/pip install -r requirements.lock; see README)"
    )

try:
    check_config(config)
except ConfigError as error:
    raise WorkflowError(str(error)) from None


# On this machine (not a cluster), jobs together may hold at most its memory unless
# --resources mem_mb=... says otherwise: two 11 GB exports must not start side by side on 24 GB.
if not workflow.non_local_exec and "mem_mb" not in workflow.global_resources:
    if machine_memory_mb():
        workflow.register_resource("mem_mb", machine_memory_mb())

LAYOUT = ResultsLayout()
# Every export folder there can be (the {artefact} wildcard): onnx, openvino, torchscript/cpu, ...
EXPORT_ARTEFACTS = export_artefacts()
# Job logs written after this are this invocation's (the failure summary lists the failed ones).
INVOCATION_STARTED_S = time.time() - 1
HUB_MODELS = sorted(alias for alias, model in config["models"].items() if "hf_id" in model)
STANDIN_MODELS = sorted(alias for alias, model in config["models"].items() if "standin" in model)


def standin_spec(model):
    """A stand-in's build spec: its named geometry expanded, every default resolved."""
    return resolve_standin_spec(config["models"][model]["standin"])


def model_parameters(model):
    """A model's parameters before it exists (None where the config does not say)."""
    return plan_model_parameters(config, model)[0]


def job_mem_mb(stage):
    """resources: mem_mb of a job that holds a model, from the model's size (study/footprint.py):
    Snakemake starts together only jobs whose needs fit its mem_mb limit."""

    def need(wildcards):
        return job_memory_mb(stage, model_parameters(wildcards.model) or 0)

    return need


def alternatives(values):
    """A wildcard constraint matching exactly these values (never an empty alternation)."""
    return "|".join(re.escape(value) for value in values) or "(?!)"


def study_configurations():
    configurations = [Configuration(c["engine"], c["provider"]) for c in config["configurations"]]
    cuda_wanted = any(c.provider == "cuda" for c in configurations)
    decision = apply_cuda_policy(
        configurations,
        config["cuda"]["policy"],
        gpu_present() if cuda_wanted and config["cuda"]["policy"] == "auto" else False,
    )
    if decision.warning:
        logger.warning(f"WARNING: {decision.warning}")
    return decision


CUDA_DECISION = study_configurations()
CONFIGURATIONS = CUDA_DECISION.configurations
EXCLUDED_CONFIGURATIONS = CUDA_DECISION.excluded


def selected(values, chosen):
    return [value for value in values if not chosen or value in chosen]


SELECTED_MODELS = selected(list(config["models"]), config["targets"]["models"])
SELECTED_CONFIGURATIONS = [
    c
    for c in CONFIGURATIONS
    if c.id in selected([c.id for c in CONFIGURATIONS], config["targets"]["configurations"])
]
SELECTED_REPETITIONS = selected(
    list(range(1, config["repetitions"] + 1)), config["targets"]["repetitions"]
)
STUDY_RUNS = [
    RunKey(model, configuration, rep)
    for model in config["models"]
    for configuration in CONFIGURATIONS
    for rep in range(1, config["repetitions"] + 1)
]
SELECTED_RUNS = [
    key
    for key in STUDY_RUNS
    if key.model in SELECTED_MODELS
    and key.configuration in SELECTED_CONFIGURATIONS
    and key.rep in SELECTED_REPETITIONS
]
# The same permutation in every process (and on every cluster node): over the configured runs,
# whatever this machine's GPU makes of the CUDA configurations.
RUN_PRIORITIES = run_priorities(
    configured_runs(config),
    config["protocol"]["run_order"]["mode"],
    config["protocol"]["run_order"]["seed"],
)


MODEL_PRIORITIES = model_priorities(RUN_PRIORITIES, config["protocol"]["run_order"]["mode"])


wildcard_constraints:
    model=alternatives(config["models"]),
    engine=alternatives(ENGINES),
    provider=alternatives(PROVIDERS),
    rep=r"[1-9][0-9]*",
    tokenizer=alternatives(config["tokenizers"]),


def run_key(wildcards):
    return RunKey.of(wildcards.model, wildcards.engine, wildcards.provider, wildcards.rep)


def serving_env(wildcards):
    """Conda env for jobs that load an engine (the vocabulary says which serves each one)."""
    configuration = Configuration(wildcards.engine, wildcards.provider)
    return str(Path(workflow.basedir) / "envs" / f"{configuration.serving_env}.yaml")


def machine_cores(wildcards=None):
    """A job that owns the machine claims every core Snakemake may use here.

    Snakemake caps it at --cores. On a cluster profiles/slurm decides instead (cpus_per_task: the
    whole node the job gets). It is never the engine's thread count (the config's `threads`), so
    --cores does not change what is measured.
    """
    return os.cpu_count() or 1


def model_dir(model):
    return f"resources/models/{model}"


def engine_artefact(wildcards):
    """What an engine loads besides the model folder: its export (none for torch)."""
    configuration = Configuration(wildcards.engine, wildcards.provider)
    folder = LAYOUT.export_dir(wildcards.model, configuration)
    return [] if folder is None else folder.as_posix()


def equivalence_check(wildcards):
    configuration = Configuration(wildcards.engine, wildcards.provider)
    path = LAYOUT.check_path(wildcards.model, configuration)
    return [] if path is None else path.as_posix()


def prompt_inputs(wildcards):
    inputs = {
        "humaneval": "resources/humaneval/HumanEval.jsonl",
        "tokenizer": f"resources/tokenizers/{config['prompts']['tokenizer']}",
    }
    if config["prompts"]["source"] == "paper":
        inputs["paper_prompts"] = "resources/paper/RandomHumanEval.jsonl"
    return inputs


def check_inputs(wildcards):
    """The model, the engine's export where it loads one, and the prompts."""
    inputs = {
        "model": model_dir(wildcards.model),
        "prompts": LAYOUT.prompts.as_posix(),
        "prompts_manifest": LAYOUT.prompts_manifest.as_posix(),
    }
    if Configuration(wildcards.engine, wildcards.provider).exported:
        inputs["artefact"] = engine_artefact(wildcards)
    return inputs


def measure_inputs(wildcards):
    inputs = {
        "prompts": LAYOUT.prompts.as_posix(),
        "prompts_manifest": LAYOUT.prompts_manifest.as_posix(),
        "model": model_dir(wildcards.model),
    }
    configuration = Configuration(wildcards.engine, wildcards.provider)
    if configuration.exported:
        inputs["artefact"] = engine_artefact(wildcards)
    if not configuration.is_reference:
        inputs["check"] = equivalence_check(wildcards)
    return inputs


def measure_identity(wildcards):
    """The measure rule's params: what the run measures, and nothing that merely describes it."""
    return measurement_identity(
        config, wildcards.model, wildcards.engine, wildcards.provider, wildcards.rep
    )


def model_priority(wildcards):
    """A model's build, exports and checks: before every job of a later model under 'by_model'."""
    return MODEL_PRIORITIES.get(wildcards.model, 0)


def export_output():
    """Every export folder ({model}, {artefact}); temp() under export.remove_after_use, so
    Snakemake removes it once every job of the invocation that loads it is done (the runs keep
    its SHA-256)."""
    folder = directory(LAYOUT.export_pattern())
    return temp(folder) if config["export"]["remove_after_use"] else folder


def export_spec(wildcards):
    engine, _ = parse_export_artefact(wildcards.artefact)
    return ENGINE_SPECS[engine]


def export_env(wildcards):
    """The conda env of an export job: the one its engine's spec names."""
    name = export_spec(wildcards).export_env
    return str(Path(workflow.basedir) / "envs" / f"{name}.yaml")


def export_settings(wildcards):
    return export_spec(wildcards).export_settings(config)


def export_mem_mb(wildcards):
    engine, _ = parse_export_artefact(wildcards.artefact)
    return job_mem_mb(export_stage(engine))(wildcards)


def run_priority(wildcards):
    key = run_key(wildcards)
    return RUN_PRIORITIES.get((key.model, key.configuration.id, key.rep), 0)


def plan_state():
    """What the plan reads of the study, as one digest: the runs, benchmark files, calibrations
    and model folders there are (names and times), and the free disk to the GB."""
    import hashlib
    import shutil

    digest = hashlib.sha256()
    for folder in ("results/runs", "results/benchmarks", "results/calibration", "resources/models"):
        for path in sorted(Path(folder).glob("**/*.json" if "runs" in folder else "**/*")):
            if "runs" not in folder or path.name == "run.json":
                digest.update(f"{path}:{path.stat().st_mtime_ns}".encode())
    free_gb = shutil.disk_usage(".").free // 10**9
    return f"{digest.hexdigest()[:16]}, {free_gb} GB free"


def selected_runs():
    return [LAYOUT.run_record(key).as_posix() for key in SELECTED_RUNS]


def other_existing_runs():
    """Runs of the study outside the selected targets that were measured before.

    The analysis always covers every run of the study that exists, so a subset invocation never
    shrinks the study's tables. They are passed by name, not as inputs: as inputs, Snakemake would
    plan to re-measure any of them whose settings changed, which a subset invocation must not do.
    """
    chosen = set(SELECTED_RUNS)
    return [
        LAYOUT.run_record(key).as_posix()
        for key in STUDY_RUNS
        if key not in chosen and LAYOUT.run_record(key).is_file()
    ]


def selected_checks():
    return sorted(
        {
            LAYOUT.check_path(key.model, key.configuration).as_posix()
            for key in SELECTED_RUNS
            if not key.configuration.is_reference
        }
    )


def other_existing_checks():
    chosen = set(selected_checks())
    return sorted(
        {
            path.as_posix()
            for key in STUDY_RUNS
            if (path := LAYOUT.check_path(key.model, key.configuration)) is not None
            and path.as_posix() not in chosen
            and path.is_file()
        }
    )


def carbon_inputs(wildcards):
    """The carbon intensity CSV, where carbon.intensity_g_per_kwh names one."""
    value = config["carbon"]["intensity_g_per_kwh"]
    return {"carbon": value} if isinstance(value, str) else {}


def model_descriptions():
    """What the config says about each model beyond its identity (size category, ...)."""
    return {
        alias: {key: entry.get(key) for key in MODEL_DESCRIPTION_KEYS}
        for alias, entry in config["models"].items()
    }


def study_summary():
    """Plain values describing the study, recorded in the package's README."""
    return {
        "name": config["study"]["name"],
        "description": config["study"]["description"],
        "configurations": [c.label for c in CONFIGURATIONS],
        "excluded_configurations": {
            c.label: CUDA_DECISION.warning for c in EXCLUDED_CONFIGURATIONS
        },
        "repetitions": config["repetitions"],
        "planned_runs": len(STUDY_RUNS),
    }


def example_timelines():
    """One timeline figure per selected configuration (its first selected model and repetition)."""
    if not SELECTED_MODELS or not SELECTED_REPETITIONS:
        return []
    model, rep = SELECTED_MODELS[0], SELECTED_REPETITIONS[0]
    return [
        f"results/figures/timelines/{model}_{configuration.id}_rep{rep}.png"
        for configuration in SELECTED_CONFIGURATIONS
    ]


def analysis_selection():
    """The analysis rules' choice of runs and method (selection.prepare_analysis's settings)."""
    return {key: config["analysis"][key] for key in ("method", "configurations", "invalid_runs")}


def analysis_outputs():
    return [
        LAYOUT.prompts.as_posix(),
        "results/metrics/runs.parquet",
        "results/metrics/runs.csv",
        "results/metrics/failed_runs.csv",
        "results/metrics/excluded_runs.csv",
        "results/stats/tests.csv",
        "results/stats/posthoc.csv",
        "results/tables/table4_cpu.csv",
        "results/tables/table5_cuda.csv",
        "results/tables/savings.csv",
        "results/metrics/equivalence.csv",
        "results/figures/study",
        *example_timelines(),
    ]


def all_targets(wildcards=None):
    """Everything the study makes. An input function of rule all, so it runs while Snakemake
    plans the study (with its re-run triggers known) and can warn about re-measurement first."""
    warn_about_remeasurement()
    # The runs themselves are targets: a deleted run is measured again by the plain command
    # instead of silently vanishing from a package that is rebuilt without it.
    return [
        *selected_runs(),
        *selected_checks(),
        *analysis_outputs(),
        "results/README.md",
        "results/SHA256SUMS",
        "results/replication-package.zip",
    ]


def workflow_command():
    """The command that reproduces this study (recorded in the package's README).

    Config files are named relative to the working directory, so no machine's path is recorded.
    """
    configfiles = " ".join(
        f"--configfile {relative_to_workdir(path)}" for path in workflow.overwrite_configfiles
    )
    return f"snakemake --cores 1 --use-conda {configfiles}".strip()


def relative_to_workdir(path):
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name


FORECAST_DONE = []


def warn_about_remeasurement():
    """Say before anything runs how many existing runs are about to be measured again."""
    if FORECAST_DONE or workflow.exec_mode != ExecMode.DEFAULT:
        return
    FORECAST_DONE.append(True)
    triggers = workflow.rerun_triggers
    script = Path(workflow.basedir) / "workflow" / "scripts" / "measure.py"
    existing = [key for key in SELECTED_RUNS if LAYOUT.run_record(key).is_file()]
    found = forecast(
        (
            (
                key,
                LAYOUT.run_record(key),
                measurement_identity(
                    config,
                    key.model,
                    key.configuration.engine,
                    key.configuration.provider,
                    key.rep,
                ),
            )
            for key in existing
        ),
        script=script if RerunTrigger.CODE in triggers else None,
        compare_settings=RerunTrigger.PARAMS in triggers,
    )
    message = summary(found, len(existing))
    if message:
        logger.warning(f"WARNING: {message}")


onerror:
    # One failed job does not stop the others (keep-going); say at the end what failed, and where.
    logger.error(failure_summary(Path("results/logs"), INVOCATION_STARTED_S, log))
