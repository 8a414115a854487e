"""The study's design: the checks a config must pass, the CUDA policy, the run order, and what a
run's identity is (what it measures) as opposed to its provenance (what it merely records).

The JSON schema (config/schema.yaml) checks types and unknown keys; this module checks what a
schema cannot say clearly: combinations that do not exist and references between sections.
It takes plain dicts and never reads files.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving_energy.study.geometries import resolve_standin_spec
from serving_energy.study.vocabulary import (
    CONFIGURATION_IDS,
    ENGINE_SPECS,
    ConfigError,
    Configuration,
)


def check_config(config: Mapping) -> None:
    """Raise ConfigError listing every problem (with its key) that the schema cannot express."""
    problems: list[str] = []
    problems += _configuration_problems(config.get("configurations", []))
    problems += _engine_option_problems(config.get("engines") or {})
    problems += _analysed_configuration_problems(
        ((config.get("analysis") or {}).get("configurations")) or {}
    )
    problems += _model_problems(config.get("models", {}))
    problems += _standin_engine_problems(config)
    problems += _prompt_problems(config)
    problems += _target_problems(config)
    problems += _carbon_problems(config.get("carbon") or {})
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))


def _carbon_problems(carbon: Mapping) -> list[str]:
    """Carbon's settings, checked before anything runs (the intensity file's content is checked
    where it is read, analysis/carbon.py)."""
    value = carbon.get("intensity_g_per_kwh")
    if value is None:
        return []
    problems = []
    if not str(carbon.get("source") or "").strip():
        problems.append(
            "carbon.source: say where carbon.intensity_g_per_kwh comes from (a grid operator, "
            "Electricity Maps, a national average and its year); it is printed with the figures"
        )
    if isinstance(value, str):
        if not Path(value).is_file():
            problems.append(
                f"carbon.intensity_g_per_kwh: {value} is not a file (a CSV "
                "timestamp,g_per_kwh) and not a number"
            )
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        problems.append(f"carbon.intensity_g_per_kwh: {value!r} is not a number >= 0")
    return problems


def _configuration_problems(configurations: Sequence[Mapping]) -> list[str]:
    problems, seen = [], set()
    for index, entry in enumerate(configurations):
        try:
            configuration = Configuration(entry.get("engine"), entry.get("provider"))
        except ConfigError as error:
            problems.append(f"configurations[{index}]: {error}")
            continue
        if configuration in seen:
            problems.append(f"configurations[{index}]: {configuration.label} is listed twice")
        seen.add(configuration)
    return problems


def _engine_option_problems(engines: Mapping) -> list[str]:
    """Each engine's options, checked by the engine's own options type (its spec)."""
    problems = []
    for engine, settings in engines.items():
        spec = ENGINE_SPECS.get(engine)
        if spec is None:
            problems.append(f"engines.{engine}: unknown engine; one of {', '.join(ENGINE_SPECS)}")
            continue
        try:
            spec.make_options(settings)
        except (TypeError, ValueError) as error:
            problems.append(f"engines.{engine}: {error}")
    return problems


def _analysed_configuration_problems(chosen: Mapping) -> list[str]:
    problems = []
    for key in ("include", "exclude"):
        for index, configuration_id in enumerate(chosen.get(key) or []):
            if configuration_id in CONFIGURATION_IDS:
                continue
            close = difflib.get_close_matches(str(configuration_id), CONFIGURATION_IDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                f"analysis.configurations.{key}[{index}]: unknown configuration "
                f"{configuration_id!r}{hint} (one of {', '.join(CONFIGURATION_IDS)})"
            )
    return problems


def _model_problems(models: Mapping[str, Mapping]) -> list[str]:
    problems = []
    for alias, model in models.items():
        has_hub, has_standin = "hf_id" in model, "standin" in model
        if not has_hub and not has_standin:
            problems.append(
                f"models.{alias}: has no model id: give 'hf_id' (a Hugging Face model, with "
                "'revision') or 'standin' (a model built locally)"
            )
        elif has_hub and has_standin:
            problems.append(f"models.{alias}: give either 'hf_id' or 'standin', not both")
        elif has_hub and "revision" not in model:
            problems.append(
                f"models.{alias}.revision: missing; pin the Hugging Face revision (a commit hash) "
                "so the study can be reproduced"
            )
        if has_standin:
            try:
                resolve_standin_spec(model["standin"])
            except ValueError as error:
                problems.append(f"models.{alias}.standin: {error}")
    return problems


def _standin_engine_problems(config: Mapping) -> list[str]:
    """A stand-in that an engine of the study cannot take (llama.cpp's converter knows few
    tokenizers): refused now, not after hours of other exports."""
    engines = {entry.get("engine") for entry in config.get("configurations", [])}
    problems = []
    for alias, model in (config.get("models") or {}).items():
        if "standin" not in model:
            continue
        try:
            standin = resolve_standin_spec(model["standin"])
        except ValueError:
            continue  # reported by _model_problems
        for engine in sorted(e for e in engines if e in ENGINE_SPECS):
            why = ENGINE_SPECS[engine].standin_problem(
                standin["architecture"], standin["tokenizer"]
            )
            if why:
                problems.append(
                    f"models.{alias}.standin: engine {engine} cannot take it: {why} (set the "
                    "stand-in's tokenizer, or leave the engine out of 'configurations')"
                )
    return problems


def _prompt_problems(config: Mapping) -> list[str]:
    prompts = config.get("prompts", {})
    problems = []
    if prompts.get("min_tokens", 10) > prompts.get("max_tokens", 15):
        problems.append("prompts.min_tokens: larger than prompts.max_tokens")
    tokenizer = prompts.get("tokenizer")
    if tokenizer is not None and tokenizer not in config.get("tokenizers", {}):
        problems.append(
            f"prompts.tokenizer: {tokenizer!r} is not an entry of 'tokenizers' "
            f"(known: {', '.join(config.get('tokenizers', {})) or 'none'})"
        )
    for name, entry in config.get("tokenizers", {}).items():
        if ("hf_id" in entry) == ("offline" in entry):
            problems.append(f"tokenizers.{name}: give exactly one of 'hf_id' or 'offline'")
        elif "hf_id" in entry and "revision" not in entry:
            problems.append(f"tokenizers.{name}.revision: missing; pin the tokenizer's revision")
    return problems


def _target_problems(config: Mapping) -> list[str]:
    targets = config.get("targets", {})
    problems = []
    for alias in targets.get("models", []):
        if alias not in config.get("models", {}):
            problems.append(f"targets.models: {alias!r} is not a model of this study")
    known = set()
    for entry in config.get("configurations", []):
        try:
            known.add(Configuration(entry.get("engine"), entry.get("provider")).id)
        except ConfigError:
            pass  # reported by _configuration_problems
    for configuration_id in targets.get("configurations", []):
        if configuration_id not in known:
            problems.append(
                f"targets.configurations: {configuration_id!r} is not a configuration of this "
                f"study (known: {', '.join(sorted(known))})"
            )
    repetitions = config.get("repetitions", 10)
    for rep in targets.get("repetitions", []):
        if not 1 <= rep <= repetitions:
            problems.append(f"targets.repetitions: {rep} is outside 1..{repetitions}")
    return problems


@dataclass(frozen=True)
class CudaDecision:
    configurations: tuple[Configuration, ...]
    excluded: tuple[Configuration, ...]
    warning: str | None


def apply_cuda_policy(
    configurations: Sequence[Configuration], policy: str, gpu_present: bool
) -> CudaDecision:
    """Keep or leave out CUDA configurations; a silent CPU run of a CUDA configuration is never ok."""
    cuda = tuple(c for c in configurations if c.provider == "cuda")
    if not cuda or policy == "require" or (policy == "auto" and gpu_present):
        return CudaDecision(tuple(configurations), (), None)
    kept = tuple(c for c in configurations if c.provider != "cuda")
    labels = ", ".join(c.label for c in cuda)
    if policy == "skip":
        reason = "cuda.policy is 'skip'"
    else:
        reason = (
            "no NVIDIA GPU was found on this machine; to run them anyway (e.g. on GPU nodes of a "
            "cluster) use --config 'cuda={policy: require}'"
        )
    return CudaDecision(kept, cuda, f"leaving out {labels}: {reason}")


HUMANEVAL_PROBLEMS = 164


def expected_prompt_count(limit: int | None) -> int:
    """How many prompts a study sends in every run: one per HumanEval problem, or the limit."""
    return HUMANEVAL_PROBLEMS if limit is None else min(limit, HUMANEVAL_PROBLEMS)


RUN_ORDER_MODES = ("random", "fixed", "by_model")


def run_priorities(
    runs: Sequence[tuple[str, str, int]], mode: str, seed: int
) -> dict[tuple[str, str, int], int]:
    """Scheduling priority of every (model, configuration id, rep): higher runs first.

    'random' uses a seeded permutation so that slow drifts of the machine (temperature, background
    load) do not line up with one model or configuration; 'fixed' keeps the given order;
    'by_model' keeps the models in the given order and permutes each model's runs (drift is then
    spread over one model's configurations, which is what the tables compare), so one model's
    exports can be removed before the next model's are made.
    """
    order = list(runs)
    if mode == "random":
        random.Random(seed).shuffle(order)
    elif mode == "by_model":
        rng = random.Random(seed)
        models = list(dict.fromkeys(model for model, _, _ in order))
        blocks = [[run for run in order if run[0] == model] for model in models]
        for block in blocks:
            rng.shuffle(block)
        order = [run for block in blocks for run in block]
    elif mode != "fixed":
        raise ConfigError(
            f"protocol.run_order.mode: {mode!r} is not one of {', '.join(RUN_ORDER_MODES)}"
        )
    return {run: len(order) - position for position, run in enumerate(order)}


def model_priorities(priorities: Mapping[tuple[str, str, int], int], mode: str) -> dict[str, int]:
    """Priority of a model's build, exports and checks: under 'by_model', its first run's, so
    they come before every job of a later model (and its exports can go before the next model's
    are made); otherwise none (Snakemake makes them as the runs need them)."""
    if mode != "by_model":
        return {}
    highest: dict[str, int] = {}
    for (model, _, _), priority in priorities.items():
        highest[model] = max(priority, highest.get(model, 0))
    return highest


# -- what a run is, and what it merely records ------------------------------------------------
# A model's descriptive fields feed the analysis (size category) and the tables, not the measurement.
MODEL_DESCRIPTION_KEYS = (
    "parameters", "size_category", "affiliation", "release", "humaneval_pass_at_1_pct",
)  # fmt: skip
# The parts of the protocol that change what is measured; run order and time-outs do not.
PROTOCOL_IDENTITY_KEYS = ("idle_before_s", "idle_after_s", "warmup_requests", "cooldown")
METER_CREDENTIALS = ("username", "password")


def without_credentials(meters: Mapping) -> dict:
    """Meter settings with passwords and user names left out (they are never recorded)."""
    return {
        name: (
            {k: v for k, v in value.items() if k not in METER_CREDENTIALS}
            if isinstance(value, Mapping)
            else value
        )
        for name, value in meters.items()
    }


def measurement_identity(
    config: Mapping, model: str, engine: str, provider: str, rep: int | str
) -> dict:
    """Everything that changes what a run measures, and nothing else.

    This is the measure rule's params: Snakemake re-measures a run when it changes, so targets,
    analysis settings, the run order, the study's description and ``--cores`` are not in it. The
    engine's thread count is the config's ``threads`` (null: every core of the measuring machine,
    resolved and recorded by the run), never Snakemake's ``--cores``.
    """
    entry = config["models"][model]
    return {
        "model": {
            "alias": model,
            **{key: value for key, value in entry.items() if key not in MODEL_DESCRIPTION_KEYS},
        },
        "engine": engine,
        "provider": provider,
        "rep": int(rep),
        "threads": config.get("threads"),
        "generation": dict(config["generation"]),
        "protocol": {key: config["protocol"][key] for key in PROTOCOL_IDENTITY_KEYS},
        "meters": without_credentials(config["meters"]),
        "engine_options": engine_options(config, engine),
    }


def engine_options(config: Mapping, engine: str) -> dict:
    """The settings of ``engines`` that concern this engine only (so that changing OpenVINO's
    precision re-measures the OpenVINO runs and nothing else), as a run's identity records them:
    each key prefixed with the engine (``openvino_inference_precision``)."""
    return {
        f"{engine}_{key}": value for key, value in sorted(engine_settings(config, engine).items())
    }


def engine_settings(config: Mapping, engine: str) -> dict:
    """The config's ``engines.<engine>``: the engine's own options, as the engine takes them."""
    return dict((config.get("engines") or {}).get(engine) or {})


def settings_from_engine_options(engine: str, options: Mapping) -> dict:
    """``engine_options`` (a run identity's form) back to the engine's own option names."""
    prefix = f"{engine}_"
    stray = sorted(key for key in options if not key.startswith(prefix))
    if stray:
        raise ValueError(f"engine options {stray} do not belong to engine {engine!r}")
    return {key[len(prefix) :]: value for key, value in options.items()}


def identity_changes(old: Mapping, new: Mapping, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Leaf settings that differ between two identities, by dotted key."""
    changes: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(old) | set(new), key=str):
        name = f"{prefix}{key}"
        before, after = old.get(key), new.get(key)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            changes.update(identity_changes(before, after, f"{name}."))
        elif before != after:
            changes[name] = (before, after)
    return changes


def config_sha256(config: Mapping) -> str:
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def configured_runs(config: Mapping) -> list[tuple[str, str, int]]:
    """Every (model, configuration id, rep) the config describes, in config order."""
    configurations = [Configuration(c["engine"], c["provider"]) for c in config["configurations"]]
    return [
        (model, configuration.id, rep)
        for model in config["models"]
        for configuration in configurations
        for rep in range(1, config["repetitions"] + 1)
    ]


def run_provenance(config: Mapping, model: str, configuration_id: str, rep: int) -> dict:
    """What a run records about the study it belongs to without being part of what it measures."""
    order = config["protocol"]["run_order"]
    priorities = run_priorities(configured_runs(config), order["mode"], order["seed"])
    priority = priorities.get((model, configuration_id, int(rep)))
    return {
        "study": {
            "name": config["study"]["name"],
            "description": config["study"]["description"],
        },
        "config_sha256": config_sha256(config),
        "run_order": {
            **order,
            "priority": priority,
            "position": None if priority is None else len(priorities) - priority + 1,
            "of": len(priorities),
        },
    }
