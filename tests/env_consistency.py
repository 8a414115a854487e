"""Consistency of envs/*.yaml with the tested lock and with what each rule imports, without conda.

No conda channel is reachable where the project is developed and tested, so the conda envs cannot be
built here. Instead every function below proves one property from files and from the metadata of
the tested venv (requirements.lock installed), and returns a list of human-readable problems
(empty = consistent):

- ``check_env_file``: the YAML parses, uses conda-forge + nodefaults, pins python, pins every
  package exactly, and every pin equals requirements.lock (``ALLOWED_OUTSIDE_LOCK`` lists the
  documented exceptions).
- ``check_env_closed``: every (transitive) requirement of what an env pins that the tested venv has
  is pinned too, so pip cannot pick other versions than the tested ones.
- ``rule_envs``: which env each rule of workflow/rules/*.smk uses (``serving_env`` expanded over
  every engine/provider it can receive).
- ``check_rule_imports``: every third-party module a rule's script can import — followed through
  the ``serving_energy`` library, imports inside functions included — is provided by the rule's
  env (pinned or required by something pinned).

See docs/environments.md.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import yaml
from packaging.requirements import Requirement

from serving_energy.study import vocabulary
from serving_energy.study.layout import export_artefacts, parse_export_artefact
from serving_energy.study.vocabulary import CONFIGURATIONS, ENGINES

REPO = Path(__file__).resolve().parents[1]
ENVS = REPO / "envs"
RULES = REPO / "workflow" / "rules"
SCRIPTS = REPO / "workflow" / "scripts"
LIBRARY = "serving_energy"
LOCK = REPO / "requirements.lock"

CHANNELS = ["conda-forge", "nodefaults"]
PYTHON = "3.11"

# Pins that cannot equal the lock, each explained in docs/environments.md.
#  onnxruntime-gpu: the CUDA build of ONNX Runtime cannot share an env with onnxruntime, so the
#  lock (one venv) cannot hold it; 1.32.0 (the tested onnxruntime) is not published for it on
#  PyPI, 1.31.1 is the closest release with a Linux x86_64 cp311 wheel (CUDA 13, like torch 2.13.0).
#  pip, setuptools: installer tools that a frozen lock leaves out (torch requires setuptools); the
#  tested venv's versions.
ALLOWED_OUTSIDE_LOCK = {"onnxruntime-gpu": "1.31.1", "pip": "26.3", "setuptools": "84.2.1"}
# A distribution that provides the modules (and has the requirements) of another one.
PROVIDES = {"onnxruntime-gpu": "onnxruntime"}

# Which engines' code an env has to carry. Engine code lives in plug-in folders
# (serving_energy/engines/<id>_engine/) that the library imports by the module paths of their specs
# (EngineSpec.engine_class, .exporter), not by import statements: a rule's own engines' plug-in
# modules are followed from those paths (``RuleUse.seeds``), and lazy imports of another engine's
# plug-in are not. Envs of rules that load no engine follow everything they import (None).
ENV_ENGINES: dict[str, frozenset[str] | None] = {"data": None, "analysis": None}
PLUGIN_ENGINES = {
    plugin: spec_id
    for plugin, spec_id in zip(vocabulary.ENGINE_PLUGINS, vocabulary.ENGINE_SPECS, strict=True)
}


def _module_of(path: str) -> str:
    return path.partition(":")[0]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        pins[normalise(requirement.name)] = specifier.version
    return pins


# ---------------------------------------------------------------------------------------- env files


@dataclass
class Pin:
    name: str  # normalised
    version: str | None  # None = unpinned
    extras: frozenset[str] = frozenset()
    source: str = "pip"  # "conda" or "pip"
    text: str = ""


@dataclass
class Env:
    path: Path
    name: str | None = None
    channels: list = field(default_factory=list)
    pins: list[Pin] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def pinned(self) -> dict[str, Pin]:
        return {pin.name: pin for pin in self.pins}


CONDA_SPEC = re.compile(
    r"^(?P<name>[A-Za-z0-9_.\-]+)\s*(?:(?P<op>==|=)\s*(?P<version>[^\s=<>!,*|]+))?$"
)


def parse_env(path: Path) -> Env:
    env = Env(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        env.problems.append(f"{path.name}: not valid YAML: {error}")
        return env
    if not isinstance(data, dict):
        env.problems.append(f"{path.name}: not a conda environment file (no mapping)")
        return env
    env.name = data.get("name")
    env.channels = data.get("channels") or []
    dependencies = data.get("dependencies")
    if not isinstance(dependencies, list) or not dependencies:
        env.problems.append(f"{path.name}: no dependencies")
        return env
    for entry in dependencies:
        if isinstance(entry, dict):
            if set(entry) != {"pip"} or not isinstance(entry["pip"], list):
                env.problems.append(f"{path.name}: unexpected dependency entry {entry!r}")
                continue
            for line in entry["pip"]:
                env.pins.append(_pip_pin(path, str(line), env.problems))
        else:
            match = CONDA_SPEC.match(str(entry).strip())
            if not match:
                env.problems.append(f"{path.name}: cannot read conda spec {entry!r}")
                continue
            env.pins.append(
                Pin(normalise(match["name"]), match["version"], source="conda", text=str(entry))
            )
    return env


def _pip_pin(path: Path, line: str, problems: list[str]) -> Pin:
    if line.startswith("-"):
        problems.append(f"{path.name}: pip option {line!r} (indexes and flags are not allowed)")
        return Pin(line, None, text=line)
    try:
        requirement = Requirement(line)
    except Exception as error:  # packaging's InvalidRequirement
        problems.append(f"{path.name}: cannot read pip requirement {line!r}: {error}")
        return Pin(line, None, text=line)
    specifiers = list(requirement.specifier)
    version = None
    if len(specifiers) == 1 and specifiers[0].operator == "==" and "*" not in specifiers[0].version:
        version = specifiers[0].version
    return Pin(normalise(requirement.name), version, frozenset(requirement.extras), "pip", line)


def check_env_file(path: Path, lock: Mapping[str, str] | None = None) -> list[str]:
    """Channels, python, exact pins equal to the lock."""
    lock = read_lock() if lock is None else lock
    env = parse_env(path)
    problems = list(env.problems)
    if env.problems and not env.pins:
        return problems
    if env.name != path.stem:
        problems.append(f"{path.name}: name is {env.name!r}, expected {path.stem!r}")
    if env.channels != CHANNELS:
        problems.append(f"{path.name}: channels are {env.channels!r}, expected {CHANNELS!r}")
    seen: set[tuple[str, str]] = set()
    for pin in env.pins:
        if (pin.name, pin.source) in seen:
            problems.append(f"{path.name}: {pin.name} listed twice")
        seen.add((pin.name, pin.source))
        if pin.version is None:
            problems.append(f"{path.name}: {pin.text!r} is not pinned to one exact version")
            continue
        if pin.name == "python":
            if pin.source != "conda" or pin.version != PYTHON:
                problems.append(f"{path.name}: python must be the conda pin python={PYTHON}")
            continue
        expected = lock.get(pin.name, ALLOWED_OUTSIDE_LOCK.get(pin.name))
        if expected is None:
            problems.append(f"{path.name}: {pin.name} is not in requirements.lock")
        elif pin.version != expected:
            problems.append(
                f"{path.name}: {pin.name} pinned to {pin.version}, requirements.lock has {expected}"
            )
    if "python" not in {pin.name for pin in env.pins if pin.source == "conda"}:
        problems.append(f"{path.name}: python is not pinned")
    both = {p.name for p in env.pins if p.source == "conda"} & {
        p.name for p in env.pins if p.source == "pip"
    }
    for name in sorted(both - {"pip"}):
        problems.append(f"{path.name}: {name} comes from both conda and pip")
    return problems


# ------------------------------------------------------------------------------ requirement closure


def _installed(name: str) -> str | None:
    """The venv's distribution for a (normalised) name, following PROVIDES."""
    name = PROVIDES.get(name, name)
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    return name


@cache
def _requirements(name: str, extras: frozenset[str]) -> tuple[tuple[str, frozenset[str]], ...]:
    """Direct requirements of an installed distribution (markers evaluated here, with extras)."""
    found = []
    for line in metadata.requires(name) or ():
        requirement = Requirement(line)
        if requirement.marker is not None:
            contexts = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if not any(requirement.marker.evaluate(context) for context in contexts):
                continue
        found.append((normalise(requirement.name), frozenset(requirement.extras)))
    return tuple(found)


def closure(pins: Iterable[Pin]) -> dict[str, str]:
    """Every distribution the pins bring in: name -> the pin it comes from (itself if pinned)."""
    reached: dict[str, str] = {}
    stack = [(pin.name, pin.extras, pin.name) for pin in pins if pin.source == "pip"]
    stack += [(pin.name, frozenset(), pin.name) for pin in pins if pin.source == "conda"]
    done: set[tuple[str, frozenset[str]]] = set()
    while stack:
        name, extras, origin = stack.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        reached.setdefault(name, origin)
        installed = _installed(name)
        if installed is None:
            continue
        for requirement, requirement_extras in _requirements(installed, extras):
            stack.append((requirement, requirement_extras, origin))
    return reached


def check_env_closed(path: Path) -> list[str]:
    """Every requirement (transitively) of the env's pins that the tested venv has is pinned."""
    env = parse_env(path)
    pinned = env.pinned()
    problems = []
    for name, origin in sorted(closure(env.pins).items()):
        if name in pinned or _installed(name) is None:
            continue
        if any(PROVIDES.get(other) == name for other in pinned):
            continue
        problems.append(f"{path.name}: {name} (required through {origin}) is not pinned")
    return problems


# ------------------------------------------------------------------------------------- rules → envs


@dataclass(frozen=True)
class RuleUse:
    rule: str
    env: Path
    script: Path | None
    engines: frozenset[str] | None  # engine-specific code to follow (None = all)
    label: str  # rule plus wildcards, for messages
    seeds: tuple[str, ...] = ()  # plug-in modules the rule's job loads by their spec's path


RULE_HEADER = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.M)


def _directive(block: str, name: str) -> str | None:
    match = re.search(rf"^\s+{name}:\s*\n\s+(.+?)\s*$", block, re.M) or re.search(
        rf"^\s+{name}:\s*(\S.*?)\s*$", block, re.M
    )
    return match.group(1).rstrip(",") if match else None


def _common_helpers(rules_dir: Path) -> dict:
    """common.smk's ``alternatives`` and ``serving_env`` executed as written (their source, not a
    copy of their logic), in a namespace with the vocabulary that common.smk imports."""
    source = (rules_dir / "common.smk").read_text()
    namespace = {
        "Path": Path,
        "re": re,
        "workflow": SimpleNamespace(basedir=str(rules_dir.parents[1])),
        **{name: value for name, value in vars(vocabulary).items() if not name.startswith("_")},
    }
    for name in ("alternatives", "serving_env"):
        match = re.search(rf"^def {name}\(.*?(?=^\S)", source, re.M | re.S)
        if match:
            code = compile(match.group(0), str(rules_dir / "common.smk"), "exec")
            exec(code, namespace)  # noqa: S102 (the repo's own code)
    return namespace


def _engine_constraint(block: str, helpers: dict) -> tuple[str, ...]:
    """The engines a rule's own ``engine=`` wildcard constraint allows (all without one)."""
    match = re.search(r"^\s+engine=(.+?),?\s*$", block, re.M)
    if not match:
        return ENGINES
    return tuple(eval(match.group(1), helpers).split("|"))  # noqa: S307 (the repo's own code)


def rule_envs(rules_dir: Path = RULES) -> tuple[list[RuleUse], list[str]]:
    """Each rule's env(s) and script; problems for rules without a usable conda directive."""
    uses: list[RuleUse] = []
    problems: list[str] = []
    helpers = _common_helpers(rules_dir)
    serving_env = helpers.get("serving_env")
    for smk in sorted(rules_dir.glob("*.smk")):
        text = smk.read_text()
        headers = list(RULE_HEADER.finditer(text))
        for i, header in enumerate(headers):
            rule = header.group(1)
            end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
            block = text[header.end() : end]
            script = _directive(block, "script")
            script_path = (smk.parent / script.strip("\"'")).resolve() if script else None
            conda = _directive(block, "conda")
            if conda is None:
                if script or re.search(r"^\s+(shell|run):", block, re.M):
                    problems.append(f"rule {rule} ({smk.name}) has no conda: directive")
                continue
            if conda[0] in "\"'":
                env = (smk.parent / conda.strip("\"'")).resolve()
                uses.append(RuleUse(rule, env, script_path, ENV_ENGINES.get(env.stem), rule))
            elif conda == "export_env":
                for artefact in export_artefacts():
                    engine, _ = parse_export_artefact(artefact)
                    spec = vocabulary.ENGINE_SPECS[engine]
                    env = (rules_dir.parents[1] / "envs" / f"{spec.export_env}.yaml").resolve()
                    seeds = (_module_of(spec.exporter),)
                    label = f"{rule}[{artefact}]"
                    uses.append(RuleUse(rule, env, script_path, frozenset({engine}), label, seeds))
            elif conda == "serving_env" and serving_env is not None:
                engines = _engine_constraint(block, helpers)
                for configuration in CONFIGURATIONS:  # only those that exist
                    if configuration.engine not in engines:
                        continue
                    engine, provider = configuration.engine, configuration.provider
                    wildcards = SimpleNamespace(engine=engine, provider=provider)
                    env = Path(serving_env(wildcards)).resolve()
                    label = f"{rule}[{configuration.id}]"
                    followed = frozenset({engine, vocabulary.REFERENCE_ENGINE})
                    seeds = tuple(
                        _module_of(vocabulary.ENGINE_SPECS[e].engine_class)
                        for e in sorted(followed)
                    )
                    uses.append(RuleUse(rule, env, script_path, followed, label, seeds))
            else:
                problems.append(f"rule {rule} ({smk.name}): cannot resolve conda: {conda}")
    for use in uses:
        if not use.env.is_file():
            problems.append(f"rule {use.label}: env {use.env} does not exist")
        if use.script is not None and not use.script.is_file():
            problems.append(f"rule {use.label}: script {use.script} does not exist")
    return uses, problems


# ------------------------------------------------------------------------------------------ imports


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name
    functions: tuple[str, ...]  # enclosing function names, outermost first
    names: tuple[str, ...] = ()  # for "from module import a, b"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _dynamic_modules(node: ast.Call) -> list[str]:
    """importlib.import_module("x"), importlib.resources.files("x") with a literal name."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name in {"import_module", "files"} and node.args:
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return [arg.value]
    return []


def imports_of(path: Path, root: Path) -> list[Import]:
    """Every import in a file, at module level or inside functions; relative ones made absolute.

    Also: modules loaded by name (importlib) and modules started as ``python -m <module>``
    (a ``"-m", "<module>"`` pair in a list or tuple, e.g. a subprocess command line).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    here = _module_name(path, root) if path.is_relative_to(root) else ""
    package = here if is_package else here.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, functions: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            scope = functions
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                scope = (*functions, child.name)
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, scope) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".") if package else []
                    base = base[: len(base) - (child.level - 1)] if child.level > 1 else base
                    module = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    module = child.module or ""
                found.append(Import(module, scope, tuple(a.name for a in child.names)))
            elif isinstance(child, ast.Call):
                found.extend(Import(m, scope) for m in _dynamic_modules(child))
            elif isinstance(child, (ast.List, ast.Tuple)):
                items = child.elts
                for a, b in zip(items, items[1:], strict=False):
                    if (
                        isinstance(a, ast.Constant)
                        and a.value == "-m"
                        and isinstance(b, ast.Constant)
                        and isinstance(b.value, str)
                    ):
                        found.append(Import(b.value, scope))
            visit(child, scope)

    visit(tree, ())
    return found


def _library_file(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _engine_of_import(imp: Import) -> str | None:
    """The engine a lazy (in-function) import belongs to, if it is engine-specific code."""
    if not imp.functions:
        return None  # module-level imports are always needed
    parts = imp.module.split(".")
    if parts[:2] == [LIBRARY, "engines"] and len(parts) > 2 and parts[2] in PLUGIN_ENGINES:
        return PLUGIN_ENGINES[parts[2]]
    if parts == [LIBRARY, "engines"]:
        for name in imp.names:
            if name in PLUGIN_ENGINES:
                return PLUGIN_ENGINES[name]
    return None


def third_party_imports(
    script: Path,
    engines: frozenset[str] | None,
    root: Path = SCRIPTS,
    seeds: Iterable[str] = (),
) -> dict[str, str]:
    """Third-party modules a script can import: module -> the library module that imports it.
    ``seeds``: library modules its job imports by name (an engine plug-in's, from its spec)."""
    result: dict[str, str] = {}
    seen: set[Path] = set()
    stack: list[tuple[Path, str]] = [(script, script.name)]
    for seed in seeds:
        file = _library_file(seed, root)
        if file is not None:
            stack.append((file, seed))
    while stack:
        path, label = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        for imp in imports_of(path, root):
            top = imp.module.partition(".")[0]
            if not top or top in sys.stdlib_module_names or top == "__future__":
                continue
            engine = _engine_of_import(imp)
            if engines is not None and engine is not None and engine not in engines:
                continue
            if top == LIBRARY:
                # The module, its parent packages, and submodules named in "from x import y".
                parts = imp.module.split(".")
                targets = [".".join(parts[: i + 1]) for i in range(len(parts))]
                targets += [f"{imp.module}.{name}" for name in imp.names]
                for target in targets:
                    file = _library_file(target, root)
                    if file is not None:
                        stack.append((file, target))
                continue
            result.setdefault(imp.module, label)
    return result


@cache
def _module_files() -> dict[str, frozenset[str]]:
    """Dotted module prefix -> distributions shipping files under it (namespace packages split)."""
    table: dict[str, set[str]] = {}
    for dist in metadata.distributions():
        name = normalise(dist.metadata["Name"])
        for file in dist.files or ():
            parts = file.parts
            if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] == "..":
                continue
            if file.suffix in {".py", ".so", ".pyd"} or len(parts) > 1:
                stem = [*parts[:-1], parts[-1].split(".")[0]]
                if stem[-1] == "__init__":
                    stem.pop()
                for i in range(1, len(stem) + 1):
                    table.setdefault(".".join(stem[:i]), set()).add(name)
    return {key: frozenset(value) for key, value in table.items()}


def distributions_of(module: str) -> frozenset[str]:
    """Distributions that ship ``module`` (deepest dotted prefix that any distribution ships)."""
    files = _module_files()
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        found = files.get(".".join(parts[:i]))
        if found:
            return found
    top = metadata.packages_distributions().get(parts[0], [])
    return frozenset(normalise(name) for name in top)


def provided(env: Env) -> set[str]:
    """Distributions an env provides: what it pins and everything those require."""
    names = set(closure(env.pins))
    names |= {PROVIDES[name] for name in names if name in PROVIDES}
    return names


def check_rule_imports(use: RuleUse, root: Path = SCRIPTS) -> list[str]:
    if use.script is None:
        return []
    env = parse_env(use.env)
    available = provided(env)
    problems = []
    imports = third_party_imports(use.script, use.engines, root, use.seeds)
    for module, importer in sorted(imports.items()):
        dists = distributions_of(module)
        if not dists:
            problems.append(
                f"rule {use.label}: {module} (imported by {importer}) is installed by no "
                "distribution of the tested venv"
            )
        elif not dists & available:
            problems.append(
                f"rule {use.label}: env {use.env.name} lacks {' or '.join(sorted(dists))} "
                f"for {module} (imported by {importer})"
            )
    return problems
