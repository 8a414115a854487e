"""The library's wings are layers: a module imports its own wing or the wings below it, never above.

    core <- study <- data <- engines <- meters <- serving <- analysis

Every import of every module counts, at module level or inside a function (a lazy import is still
a dependency), relative ones made absolute. The last tests break the rule on purpose and check that
it is caught.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from serving_energy.study import vocabulary

LIBRARY = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "serving_energy"
LAYERS = ("core", "study", "data", "engines", "meters", "serving", "analysis")


def module_name(path: Path, root: Path) -> str:
    parts = ["serving_energy", *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def library_imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every ``serving_energy`` import in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # "from serving_energy.analysis import stats" imports the module stats
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return [(line, module) for line, module in found if module.split(".")[0] == "serving_energy"]


def layer_of(module: str) -> str | None:
    """The wing of a library module; None for the package root (only ``__version__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def upward_imports(root: Path = LIBRARY) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        importer = module_name(path, root)
        wing = layer_of(importer)
        if wing is None:
            if path != root / "__init__.py":
                problems.append(f"{importer}: not in a wing ({', '.join(LAYERS)})")
            continue
        for line, imported in library_imports(path, root):
            target = layer_of(imported)
            if target is not None and LAYERS.index(target) > LAYERS.index(wing):
                problems.append(
                    f"{path.relative_to(root)}:{line}: {wing} imports {imported} ({target} is above)"
                )
    return problems


def test_every_module_imports_only_its_wing_or_those_below():
    assert upward_imports() == []


def spec_imports(root: Path = LIBRARY) -> list[str]:
    """An engine plug-in's ``spec.py`` is read by the study layer (study/vocabulary.py imports it
    by name): it may import only the core and study wings, and no third-party package."""
    problems = []
    for path in sorted((root / "engines").glob("*/spec.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif isinstance(node, ast.ImportFrom):
                names = ["(relative import)"]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__":
                    continue
                if layer_of(name) in ("core", "study"):
                    continue
                problems.append(f"{path.relative_to(root)}:{node.lineno}: imports {name}")
    return problems


def test_engine_specs_import_only_what_the_study_layer_may():
    assert sorted(p.parent.name for p in (LIBRARY / "engines").glob("*/spec.py")) == sorted(
        vocabulary.ENGINE_PLUGINS
    )
    assert spec_imports() == []


def test_a_spec_that_imports_a_runtime_is_reported(tmp_path):
    root = tmp_path / "serving_energy"
    (root / "engines" / "x_engine").mkdir(parents=True)
    (root / "engines" / "x_engine" / "spec.py").write_text(
        "import json\nfrom serving_energy.study.engine_spec import EngineSpec\n"
        "import onnxruntime\nfrom serving_energy.engines.base import Engine\n"
    )
    problems = spec_imports(root)
    assert [p.rsplit(" ", 1)[-1] for p in problems] == [
        "onnxruntime",
        "serving_energy.engines.base",
    ]


def test_the_wings_are_the_library_folders():
    folders = {path.name for path in LIBRARY.iterdir() if (path / "__init__.py").is_file()}
    assert folders == set(LAYERS)


@pytest.mark.parametrize(
    ("where", "source", "expected"),
    [
        ("core/io.py", "from serving_energy.study.layout import RunKey\n", "core imports"),
        ("data/x.py", "def f():\n    from ..serving import protocol\n", "data imports"),
        ("engines/y.py", "import serving_energy.analysis.stats\n", "engines imports"),
        ("loose.py", "", "not in a wing"),
    ],
)
def test_an_upward_or_loose_module_is_reported(tmp_path, where, source, expected):
    root = tmp_path / "serving_energy"
    for layer in LAYERS:
        (root / layer).mkdir(parents=True)
        (root / layer / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / where).write_text(source)
    problems = upward_imports(root)
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_downward_import_is_fine(tmp_path):
    root = tmp_path / "serving_energy"
    (root / "analysis").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "analysis" / "__init__.py").write_text("")
    (root / "analysis" / "m.py").write_text(
        "from serving_energy.core import io\nfrom serving_energy.meters.window import x\n"
        "from . import stats\nfrom serving_energy import __version__\n"
    )
    assert upward_imports(root) == []
