"""An engine's options declare their own config schema: the config's ``engines.<id>`` section.

An engine's options type (``EngineSpec.options``) is a frozen dataclass whose fields are the keys
of ``engines.<id>``. Each field is declared with ``option()``: its default, a description for the
reader of the config, and, where only some values exist, its choices. ``options_schema`` turns the
type into the JSON-schema fragment that ``study/config_schema.study_schema`` puts into
config/schema.yaml's ``engines``, so that an engine with options is one plug-in, not also an edit
of the shared schema. The values' own checks stay in the type's ``__post_init__``.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterable
from dataclasses import MISSING, field, fields, is_dataclass
from typing import Any

# The Python types an option may have, and their JSON-schema names.
JSON_TYPES: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


def option(default: Any, *, description: str, choices: Iterable | None = None) -> Any:
    """A field of an engine's options type: ``mode: str = option("default", description=...)``."""
    if not description.strip():
        raise ValueError("an engine option needs a description (it is the config's documentation)")
    chosen = tuple(choices) if choices is not None else None
    if chosen is not None and default not in chosen:
        raise ValueError(f"the default {default!r} is not one of the choices {chosen}")
    return field(default=default, metadata={"description": description, "choices": chosen})


def options_schema(options_type: type) -> dict[str, Any]:
    """The JSON-schema fragment of ``engines.<id>``: every field, its type, choices and default.

    Raises TypeError naming the field when the type is not a frozen dataclass of ``option()``
    fields with a default and one of the types in ``JSON_TYPES``.
    """
    name = options_type.__name__
    if not is_dataclass(options_type) or not options_type.__dataclass_params__.frozen:
        raise TypeError(f"{name}: an engine's options type is a frozen dataclass")
    description = inspect.getdoc(options_type)
    # @dataclass writes "Name(field: type = default, ...)" where the class has no docstring.
    if not description or description.startswith(f"{name}("):
        raise TypeError(f"{name}: the options type needs a docstring (the section's description)")
    hints = typing.get_type_hints(options_type)
    properties: dict[str, Any] = {}
    for each in fields(options_type):
        where = f"{name}.{each.name}"
        if "description" not in each.metadata:
            raise TypeError(f"{where}: declare the field with option(default, description=...)")
        if each.default is MISSING:
            raise TypeError(f"{where}: an engine option needs a default")
        python_type = hints[each.name]
        json_type = JSON_TYPES.get(python_type)
        if json_type is None:
            known = ", ".join(t.__name__ for t in JSON_TYPES)
            raise TypeError(f"{where}: type {python_type!r} is not one of {known}")
        # bool is an int to isinstance, not to the schema: a True default of an int is refused.
        if type(each.default) is not python_type and not (
            python_type is float and type(each.default) is int
        ):
            raise TypeError(
                f"{where}: the default {each.default!r} is not of type {python_type.__name__}"
            )
        schema: dict[str, Any] = {"description": each.metadata["description"], "type": json_type}
        if each.metadata["choices"] is not None:
            schema["enum"] = list(each.metadata["choices"])
        schema["default"] = each.default
        properties[each.name] = schema
    return {
        "description": description,
        "type": "object",
        "additionalProperties": False,
        "default": {},
        "properties": properties,
    }
