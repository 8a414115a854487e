"""An engine's options type declares its config schema (study/engine_options.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from jsonschema import Draft202012Validator

from serving_energy.study.engine_options import option, options_schema
from serving_energy.study.engine_spec import EngineSpec
from serving_energy.study.vocabulary import ENGINE_SPECS


@dataclass(frozen=True)
class _Options:
    """Settings of a made-up engine."""

    mode: str = option("fast", choices=("fast", "slow"), description="How it runs.")
    layers: int = option(2, description="Layers kept.")
    scale: float = option(0.5, description="A scale.")
    fused: bool = option(True, description="Fused kernels.")


def test_the_schema_is_the_dataclass_fields_types_choices_defaults_and_descriptions():
    schema = options_schema(_Options)
    assert schema == {
        "description": "Settings of a made-up engine.",
        "type": "object",
        "additionalProperties": False,
        "default": {},
        "properties": {
            "mode": {"description": "How it runs.", "type": "string", "enum": ["fast", "slow"],
                     "default": "fast"},
            "layers": {"description": "Layers kept.", "type": "integer", "default": 2},
            "scale": {"description": "A scale.", "type": "number", "default": 0.5},
            "fused": {"description": "Fused kernels.", "type": "boolean", "default": True},
        },
    }  # fmt: skip
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"mode": "slow", "layers": 3, "fused": False})
    assert not validator.is_valid({"mode": "medium"})
    assert not validator.is_valid({"layers": "3"})
    assert not validator.is_valid({"typo": 1})


def test_a_default_outside_the_choices_or_no_description_is_refused_where_declared():
    with pytest.raises(ValueError, match="'medium' is not one of the choices"):
        option("medium", choices=("fast", "slow"), description="How it runs.")
    with pytest.raises(ValueError, match="needs a description"):
        option("fast", description=" ")


def test_an_options_type_the_schema_cannot_describe_is_refused_naming_the_field():
    @dataclass(frozen=True)
    class Bare:
        """Settings."""

        mode: str = "fast"

    @dataclass(frozen=True)
    class Listed:
        """Settings."""

        sizes: list = option((), description="Sizes.")

    @dataclass(frozen=True)
    class Undocumented:
        mode: str = option("fast", description="How it runs.")

    @dataclass(frozen=True)
    class Mistyped:
        """Settings."""

        layers: int = option(True, description="Layers kept.")

    @dataclass
    class Mutable:
        """Settings."""

        mode: str = option("fast", description="How it runs.")

    with pytest.raises(TypeError, match=r"Bare\.mode: declare the field with option"):
        options_schema(Bare)
    with pytest.raises(TypeError, match=r"Listed\.sizes: type .* is not one of str, bool, int"):
        options_schema(Listed)
    with pytest.raises(TypeError, match=r"Mistyped\.layers: the default True is not of type int"):
        options_schema(Mistyped)
    with pytest.raises(TypeError, match="needs a docstring"):
        options_schema(Undocumented)
    with pytest.raises(TypeError, match="frozen dataclass"):
        options_schema(Mutable)
    # a plug-in with such a type fails when its spec is made, naming the engine
    with pytest.raises(TypeError, match=r"engine 'made_up': Bare\.mode"):
        EngineSpec(id="made_up", label="X", providers=("cpu",), engine_class="m:C", options=Bare)


@pytest.mark.parametrize("engine", [e for e, s in ENGINE_SPECS.items() if s.options is not None])
def test_each_engines_schema_accepts_its_defaults_and_names_every_option(engine):
    spec = ENGINE_SPECS[engine]
    schema = spec.options_schema()
    assert set(schema["properties"]) == set(spec.option_names())
    defaults = {name: part["default"] for name, part in schema["properties"].items()}
    assert Draft202012Validator(schema).is_valid(defaults)
    assert spec.make_options(defaults) == spec.make_options()
    for name, part in schema["properties"].items():
        for choice in part.get("enum", []):  # every choice the schema offers, the type takes
            spec.make_options({name: choice})


def test_docs_list_every_engines_options_with_their_choices_and_default():
    from tests.helpers import REPO

    rows = {}
    for line in (REPO / "docs" / "engines.md").read_text().splitlines():
        if line.startswith("| `engines."):
            key, choices, default = (cell.strip() for cell in line.strip("|").split("|"))
            rows[key.strip("`")] = (choices, default.strip("`"))
    expected = {}
    for engine, spec in ENGINE_SPECS.items():
        for name, part in (spec.options_schema() or {}).get("properties", {}).items():
            expected[f"engines.{engine}.{name}"] = part
    assert set(rows) == set(expected)
    for key, part in expected.items():
        choices, default = rows[key]
        assert default == str(part["default"]), key
        assert [c for c in part.get("enum", []) if f"`{c}`" not in choices] == [], key
