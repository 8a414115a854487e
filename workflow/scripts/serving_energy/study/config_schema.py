"""The study's config against its JSON schema: typed command-line overrides, one-line problems.

Snakemake reads nested ``--config`` values as text (``'generation={max_new_tokens: 400}'`` gives
``"400"``), so every override is first converted to the type the schema asks for, generically.
Then every schema violation becomes one line naming its key, instead of a dump of the schema.
config/schema.yaml holds the shared keys; each engine's ``engines.<id>`` comes from its plug-in's
options type (``study_schema``), and so do that section's defaults (``fill_engine_defaults``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def load_schema(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def study_schema(path: str | Path) -> dict:
    """config/schema.yaml with each engine plug-in's options fragment as ``engines.<id>``: the
    whole schema a study's config is checked against (an engine without options takes none)."""
    from serving_energy.study.vocabulary import ENGINE_SPECS

    schema = load_schema(path)
    engines = schema["properties"]["engines"]
    engines["properties"] = {
        engine: spec.options_schema()
        for engine, spec in ENGINE_SPECS.items()
        if spec.options is not None
    }
    engines["additionalProperties"] = False
    return schema


def fill_engine_defaults(config: dict) -> None:
    """Give ``config["engines"]`` every option of every engine that has options, in place: what
    the config sets, the rest from the options type's defaults (as the schema fills the shared
    keys'). Run after the config passed ``check_against_schema``."""
    from serving_energy.study.vocabulary import ENGINE_SPECS

    engines = config.setdefault("engines", {})
    for engine, spec in ENGINE_SPECS.items():
        if spec.options is not None:
            engines[engine] = asdict(spec.make_options(engines.get(engine)))


def _resolve(schema: Mapping, root: Mapping) -> Mapping:
    while "$ref" in schema:
        reference = schema["$ref"]
        if not reference.startswith("#/"):
            raise ValueError(f"only local $ref are supported, not {reference!r}")
        target: Any = root
        for part in reference[2:].split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _branches(schema: Mapping, root: Mapping) -> list[Mapping]:
    schema = _resolve(schema, root)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        # Keys beside the alternatives (e.g. properties shared by every branch) hold in each.
        shared = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
        return [
            branch
            for option in alternatives
            for branch in _branches({**shared, **_resolve(option, root)}, root)
        ]
    return [schema]


def _types(schema: Mapping) -> set[str]:
    declared = schema.get("type")
    if declared is None:
        return set()
    return {declared} if isinstance(declared, str) else set(declared)


def _fits(value: Any, types: set[str]) -> bool:
    if isinstance(value, bool):
        return "boolean" in types
    return any(isinstance(value, JSON_TYPES[name]) for name in types)


def coerce(value: Any, schema: Mapping, root: Mapping | None = None) -> Any:
    """``value`` with every text that the schema wants as another type parsed as YAML."""
    root = schema if root is None else root
    branches = _branches(schema, root)
    if isinstance(value, str):
        types = set().union(*(_types(branch) for branch in branches))
        if not types:
            return value
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if "string" in types:
            # A number-or-text key (carbon.intensity_g_per_kwh: a constant or a CSV's path) takes
            # a text that reads as a number as the number; any other text stays text.
            numeric = isinstance(parsed, (int, float)) and not isinstance(parsed, bool)
            return parsed if numeric and _fits(parsed, types - {"string"}) else value
        if isinstance(parsed, str) or not _fits(parsed, types):
            return value
        return coerce(parsed, schema, root)
    if isinstance(value, dict):
        return {key: coerce(item, _child(branches, key, root), root) for key, item in value.items()}
    if isinstance(value, list):
        item_schemas = [branch["items"] for branch in branches if "items" in branch]
        item_schema = {"anyOf": item_schemas} if item_schemas else {}
        return [coerce(item, item_schema, root) for item in value]
    return value


def _child(branches: list[Mapping], key: str, root: Mapping) -> Mapping:
    options = []
    for branch in branches:
        if key in branch.get("properties", {}):
            options.append(branch["properties"][key])
        elif isinstance(branch.get("additionalProperties"), Mapping):
            options.append(branch["additionalProperties"])
    return {"anyOf": options} if options else {}


BOUNDS = {
    "minimum": "is below the minimum",
    "maximum": "is above the maximum",
    "exclusiveMinimum": "must be greater than",
    "exclusiveMaximum": "must be less than",
    "pattern": "does not match the pattern",
    "minItems": "has fewer items than",
    "minProperties": "has fewer entries than",
    "minLength": "is shorter than",
}


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key(path) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def problems(config: Mapping, schema: Mapping) -> list[str]:
    """One line per schema violation, naming the key, what was there and what is allowed."""
    lines = []
    validator = Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        key = _key(error.absolute_path)
        rule = error.validator
        if rule == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            for unknown in sorted(set(error.instance) - set(allowed)):
                where = f"{key}.{unknown}" if error.absolute_path else unknown
                close = difflib.get_close_matches(unknown, allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                lines.append(
                    f"{where}: unknown key; {hint}known keys here: {', '.join(allowed) or 'none'}"
                )
        elif rule == "type":
            expected = error.validator_value
            expected = expected if isinstance(expected, str) else " or ".join(expected)
            lines.append(f"{key}: {_short(error.instance)} is not of type {expected}")
        elif rule == "enum":
            choices = ", ".join(map(str, error.validator_value))
            lines.append(f"{key}: {_short(error.instance)} is not one of: {choices}")
        elif rule == "required":
            missing = error.message.split("'")[1] if "'" in error.message else error.message
            lines.append(f"{_key([*error.absolute_path, missing])}: required key is missing")
        elif rule in ("anyOf", "oneOf"):
            lines.append(f"{key}: {_short(error.instance)} matches none of the allowed forms")
        else:
            phrase = BOUNDS.get(rule, f"violates {rule}")
            lines.append(f"{key}: {_short(error.instance)} {phrase} {error.validator_value!r}")
    return lines


def check_against_schema(config: dict, schema_path: str | Path) -> None:
    """Coerce ``config`` in place to the study schema's types (the engines' options included);
    raise ConfigError listing every problem."""
    from serving_energy.study.vocabulary import ConfigError

    schema = study_schema(schema_path)
    coerced = coerce(config, schema)
    config.clear()
    config.update(coerced)
    found = problems(config, schema)
    if found:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(found))
