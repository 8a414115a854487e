"""envs/*.yaml agree with requirements.lock and with what every rule imports (no conda needed).

The checker lives in tests/env_consistency.py; each check returns a list of problems. The last tests
break an env or a script on purpose and assert that the checker reports it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import env_consistency as ec

ENV_FILES = sorted(ec.ENVS.glob("*.yaml"))
EXPECTED_ENVS = {
    "data", "analysis", "export-torch", "export-onnx", "export-openvino", "serve-torch",
    "serve-onnx", "serve-onnx-cuda", "serve-openvino", "serve-torchscript",
    "export-llama_cpp", "serve-llama_cpp",
}  # fmt: skip


@pytest.fixture(scope="module")
def rule_uses():
    uses, problems = ec.rule_envs()
    return uses, problems


def test_every_family_has_an_env():
    assert {path.stem for path in ENV_FILES} == EXPECTED_ENVS


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.stem)
def test_env_parses_and_pins_equal_the_lock(path):
    assert ec.check_env_file(path) == []


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.stem)
def test_env_pins_everything_its_packages_require(path):
    assert ec.check_env_closed(path) == []


def test_every_rule_names_an_existing_env(rule_uses):
    uses, problems = rule_uses
    assert problems == []
    rules = {use.rule for use in uses}
    assert {"download_humaneval", "measure", "check_engine", "merge_runs", "export"} <= rules


def test_serving_env_covers_every_engine_and_provider(rule_uses):
    uses, _ = rule_uses
    measure = {use.label: use.env.stem for use in uses if use.rule == "measure"}
    assert measure == {
        "measure[torch-cpu]": "serve-torch",
        "measure[torch-cuda]": "serve-torch",
        "measure[onnx-cpu]": "serve-onnx",
        "measure[onnx-cuda]": "serve-onnx-cuda",
        "measure[openvino-cpu]": "serve-openvino",
        "measure[torchscript-cpu]": "serve-torchscript",
        "measure[torchscript-cuda]": "serve-torchscript",
        "measure[torch_compile-cpu]": "serve-torch",
        "measure[torch_compile-cuda]": "serve-torch",
        "measure[llama_cpp-cpu]": "serve-llama_cpp",
        "measure[llama_cpp-cuda]": "serve-llama_cpp",
    }
    export = {use.label: use.env.stem for use in uses if use.rule == "export"}
    assert export == {
        "export[onnx]": "export-onnx",
        "export[openvino]": "export-openvino",
        "export[torchscript/cpu]": "export-torch",
        "export[torchscript/cuda]": "export-torch",
        "export[llama_cpp]": "export-llama_cpp",
    }
    check = {use.label for use in uses if use.rule == "check_engine"}
    assert check == {
        "check_engine[onnx-cpu]", "check_engine[onnx-cuda]", "check_engine[openvino-cpu]",
        "check_engine[torchscript-cpu]", "check_engine[torchscript-cuda]",
        "check_engine[torch_compile-cpu]", "check_engine[torch_compile-cuda]",
        "check_engine[llama_cpp-cpu]", "check_engine[llama_cpp-cuda]",
    }  # fmt: skip


def test_every_rule_env_provides_its_scripts_imports(rule_uses):
    uses, _ = rule_uses
    problems = [problem for use in uses for problem in ec.check_rule_imports(use)]
    assert problems == []


def test_measure_follows_the_server_it_starts(rule_uses):
    """The run protocol starts `python -m serving_energy.serving.server`: its imports count for measure."""
    uses, _ = rule_uses
    (use,) = [u for u in uses if u.label == "measure[onnx-cpu]"]
    modules = ec.third_party_imports(use.script, use.engines, seeds=use.seeds)
    assert "fastapi" in modules and "uvicorn" in modules
    assert "onnxruntime" in modules and "optimum.onnxruntime" in modules  # its engine
    assert "optimum.intel" not in modules  # another engine's lazy import is not followed


def test_namespace_packages_resolve_to_their_distribution():
    assert ec.distributions_of("optimum.intel") == {"optimum-intel"}
    assert ec.distributions_of("optimum.onnxruntime") == {"optimum-onnx"}
    assert ec.distributions_of("pynvml") == {"nvidia-ml-py"}
    assert ec.distributions_of("yaml") == {"pyyaml"}


# ------------------------------------------------------------------------------ broken on purpose


def _copy_env(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = (ec.ENVS / f"{name}.yaml").read_text()
    assert old in text
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(old, new))
    return path


def test_a_changed_pin_is_reported(tmp_path):
    path = _copy_env(tmp_path, "serve-torch", "torch==2.13.0", "torch==2.12.0")
    assert ec.check_env_file(path) == [
        "serve-torch.yaml: torch pinned to 2.12.0, requirements.lock has 2.13.0"
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("- torch==2.13.0", "- torch>=2.13.0", "'torch>=2.13.0' is not pinned"),
        ("- torch==2.13.0", "- torch", "'torch' is not pinned"),
        ("- python=3.11", "- python", "'python' is not pinned"),
        ("- python=3.11", "- python=3.12", "python must be"),
        ("  - nodefaults\n", "", "channels are"),
        ("- torch==2.13.0", "- torch==2.13.0\n      - left-pad==1.0", "left-pad is not in"),
        ("- polars==2.1.0", "- polars==2.1.0\n      - --extra-index-url x", "pip option"),
    ],
)
def test_broken_env_files_are_reported(tmp_path, old, new, expected):
    path = _copy_env(tmp_path, "serve-torch", old, new)
    problems = ec.check_env_file(path)
    assert any(expected in problem for problem in problems), problems


def test_an_unparsable_env_is_reported(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("name: data\ndependencies: [python=3.11\n")
    assert "not valid YAML" in ec.check_env_file(path)[0]


def test_a_dropped_requirement_is_reported(tmp_path):
    path = _copy_env(tmp_path, "serve-torch", "      - filelock==4.3.1\n", "")
    assert ec.check_env_closed(path) == [
        "serve-torch.yaml: filelock (required through "
        + ec.closure(ec.parse_env(path).pins)["filelock"]
        + ") is not pinned"
    ]


def test_a_missing_import_is_reported(tmp_path):
    """A script importing a module its env lacks (here seaborn in the data env) fails the check."""
    root = tmp_path / "scripts"
    shutil.copytree(ec.SCRIPTS / ec.LIBRARY, root / ec.LIBRARY)
    script = root / "fake.py"
    script.write_text("from serving_energy.data.dataset import read_prompts\nimport seaborn\n")
    use = ec.RuleUse("fake", ec.ENVS / "data.yaml", script, None, "fake")
    assert ec.check_rule_imports(use, root) == [
        "rule fake: env data.yaml lacks seaborn for seaborn (imported by fake.py)"
    ]


def test_a_lazy_import_deep_in_the_library_is_reported(tmp_path):
    """An import inside a function of a library module reached through the script counts too."""
    root = tmp_path / "scripts"
    shutil.copytree(ec.SCRIPTS / ec.LIBRARY, root / ec.LIBRARY)
    io = root / ec.LIBRARY / "core" / "io.py"
    io.write_text(io.read_text() + "\n\ndef _later():\n    import statsmodels.api\n")
    script = root / "fake.py"
    script.write_text("from serving_energy.data.dataset import read_prompts\n")
    use = ec.RuleUse("fake", ec.ENVS / "data.yaml", script, None, "fake")
    problems = ec.check_rule_imports(use, root)
    assert problems == [
        "rule fake: env data.yaml lacks statsmodels for statsmodels.api "
        "(imported by serving_energy.core.io)"
    ]


def test_an_env_without_its_engine_is_reported(tmp_path):
    """The ONNX-on-CUDA env without ONNX Runtime cannot serve the ONNX engine."""
    path = _copy_env(tmp_path, "serve-onnx-cuda", "      - onnxruntime-gpu==1.31.1\n", "")
    (use,) = [u for u in ec.rule_envs()[0] if u.label == "measure[onnx-cuda]"]
    broken = ec.RuleUse(use.rule, path, use.script, use.engines, use.label, use.seeds)
    problems = ec.check_rule_imports(broken)
    assert any("lacks onnxruntime for onnxruntime" in p for p in problems), problems


def test_a_rule_without_conda_is_reported(tmp_path):
    rules = tmp_path / "workflow" / "rules"
    rules.mkdir(parents=True)
    shutil.copy(ec.RULES / "common.smk", rules / "common.smk")
    (rules / "extra.smk").write_text(
        'rule orphan:\n    output:\n        "x"\n    script:\n        "../scripts/measure.py"\n\n'
        'rule nowhere:\n    output:\n        "y"\n    conda:\n        "../../envs/nope.yaml"\n'
        '    shell:\n        "touch {output}"\n'
    )
    _, problems = ec.rule_envs(rules)
    assert any("rule orphan (extra.smk) has no conda: directive" in p for p in problems)
    assert any("rule nowhere: env" in p and "does not exist" in p for p in problems)
