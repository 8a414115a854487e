import hashlib
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from serving_energy.machine import gpu_present
from serving_energy.study import (
    ConfigError,
    Configuration,
    apply_cuda_policy,
    check_config,
    run_priorities,
)

# Snakemake's --config passes list items as text; the schema only lets digits through.
config["targets"]["repetitions"] = [int(rep) for rep in config["targets"]["repetitions"]]

try:
    check_config(config)
except ConfigError as error:
    raise WorkflowError(str(error)) from None


CONFIG_SHA256 = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
HUB_MODELS = sorted(alias for alias, model in config["models"].items() if "hf_id" in model)
STANDIN_MODELS = sorted(alias for alias, model in config["models"].items() if "standin" in model)
EXPORTED_ENGINES = ("onnx", "openvino", "torchscript")


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
ALL_RUNS = [
    (model, configuration.id, rep)
    for model in config["models"]
    for configuration in CONFIGURATIONS
    for rep in range(1, config["repetitions"] + 1)
]
RUN_PRIORITIES = run_priorities(
    ALL_RUNS,
    config["protocol"]["run_order"]["mode"],
    config["protocol"]["run_order"]["seed"],
)


wildcard_constraints:
    model=alternatives(config["models"]),
    engine="torch|onnx|openvino|torchscript",
    provider="cpu|cuda",
    rep=r"[1-9][0-9]*",
    tokenizer=alternatives(config["tokenizers"]),


def serving_env(wildcards):
    """Conda env for jobs that load an engine (ONNX Runtime on CUDA needs its own package)."""
    name = (
        "serve-onnx-cuda"
        if (wildcards.engine, wildcards.provider) == ("onnx", "cuda")
        else f"serve-{wildcards.engine}"
    )
    return str(Path(workflow.basedir) / "envs" / f"{name}.yaml")


def model_dir(model):
    return f"resources/models/{model}"


def engine_artefact(wildcards):
    """What an engine loads besides the model folder: its export (none for torch)."""
    if wildcards.engine == "torch":
        return []
    if wildcards.engine == "torchscript":
        return f"results/engines/{wildcards.model}/torchscript/{wildcards.provider}"
    return f"results/engines/{wildcards.model}/{wildcards.engine}"


def equivalence_check(wildcards):
    if wildcards.engine == "torch":
        return []
    return f"results/engines/{wildcards.model}/{wildcards.engine}-{wildcards.provider}/check.json"


def prompt_inputs(wildcards):
    inputs = {
        "humaneval": "resources/humaneval/HumanEval.jsonl",
        "tokenizer": f"resources/tokenizers/{config['prompts']['tokenizer']}",
    }
    if config["prompts"]["source"] == "paper":
        inputs["paper_prompts"] = "resources/paper/RandomHumanEval.jsonl"
    return inputs


RUN_FOLDER = "results/runs/{model}/{engine}-{provider}/rep{rep}"


def measure_inputs(wildcards):
    inputs = {
        "prompts": "results/prompts/prompts.jsonl",
        "model": model_dir(wildcards.model),
    }
    if wildcards.engine != "torch":
        inputs["artefact"] = engine_artefact(wildcards)
        inputs["check"] = equivalence_check(wildcards)
    return inputs


def measure_settings(wildcards):
    """Everything a run needs besides its files, as plain values (the library reads no config)."""
    model = config["models"][wildcards.model]
    return {
        "study": study_summary(),
        "model": {"alias": wildcards.model, **model},
        "engine": wildcards.engine,
        "provider": wildcards.provider,
        "rep": int(wildcards.rep),
        "threads": config["threads"] or workflow.cores,
        "generation": config["generation"],
        "protocol": config["protocol"],
        "meters": config["meters"],
        "equivalence": config["equivalence"],
        "run_order": {
            **config["protocol"]["run_order"],
            "priority": run_priority(wildcards),
        },
        "config_sha256": CONFIG_SHA256,
    }


def run_folder(model, configuration_id, rep):
    return f"results/runs/{model}/{configuration_id}/rep{rep}"


def run_priority(wildcards):
    return RUN_PRIORITIES[
        (
            wildcards.model,
            f"{wildcards.engine}-{wildcards.provider}",
            int(wildcards.rep),
        )
    ]


def selected_runs():
    return [
        f"{run_folder(model, configuration.id, rep)}/run.json"
        for model in SELECTED_MODELS
        for configuration in SELECTED_CONFIGURATIONS
        for rep in SELECTED_REPETITIONS
    ]


def selected_checks():
    return [
        f"results/engines/{model}/{configuration.id}/check.json"
        for model in SELECTED_MODELS
        for configuration in SELECTED_CONFIGURATIONS
        if configuration.engine != "torch"
    ]


def meter_settings():
    return config["meters"]


def study_summary():
    """Plain values describing the study, recorded in every run and in the package's README."""
    return {
        "name": config["study"]["name"],
        "description": config["study"]["description"],
        "configurations": [c.label for c in CONFIGURATIONS],
        "excluded_configurations": {
            c.label: CUDA_DECISION.warning for c in EXCLUDED_CONFIGURATIONS
        },
        "repetitions": config["repetitions"],
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


def analysis_outputs():
    return [
        "results/prompts/prompts.jsonl",
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


def all_targets():
    return [
        *analysis_outputs(),
        "results/README.md",
        "results/SHA256SUMS",
        "results/replication-package.zip",
    ]


def workflow_command():
    """The command that reproduces this study (recorded in the package's README)."""
    configfiles = " ".join(f"--configfile {path}" for path in workflow.overwrite_configfiles)
    return f"snakemake --cores {workflow.cores} --use-conda {configfiles}".strip()
