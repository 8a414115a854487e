"""Which runs enter the analysis, what is listed as left out, and the labels every output carries."""

from __future__ import annotations

import polars as pl
import pytest
from synthetic import synthetic_runs

from serving_energy.analysis import stats, tables
from serving_energy.analysis.labels import DataLabels
from serving_energy.analysis.method import EXTENDED, PAPER, method_named
from serving_energy.analysis.selection import NOT_ANALYSED_REASON, prepare_analysis, select_runs


@pytest.fixture(scope="module")
def runs() -> pl.DataFrame:
    return synthetic_runs(n_models=3, n_reps=4, seed=3)


def with_validity(runs: pl.DataFrame, invalid: dict[tuple[str, str, int], str]) -> pl.DataFrame:
    """Mark the given (model, configuration, rep) invalid with a reason, the rest valid."""
    keys = list(zip(runs["model"], runs["configuration"], runs["rep"], strict=True))
    return runs.with_columns(
        pl.Series("valid", [k not in invalid for k in keys]),
        pl.Series("invalid_reasons", [invalid.get(k) for k in keys], dtype=pl.String),
    )


BAD = {
    ("model-000", "<ONNX, CPU>", 1): "inference window 0.05 s < meter resolution 0.1 s",
    ("model-001", "<TORCH, CUDA>", 2): "idle baseline not idle (CPU 63.7 W); 3 of 6 prompts",
}


def test_without_a_valid_column_every_run_is_analysed(runs):
    selection = select_runs(runs)
    assert selection.runs.equals(runs)
    assert selection.excluded.is_empty()
    assert selection.excluded.columns == ["model", "configuration", "rep", "reasons"]


def test_invalid_runs_are_left_out_and_listed_with_their_reasons(runs):
    selection = select_runs(with_validity(runs, BAD))
    assert selection.runs.height == runs.height - 2
    assert selection.excluded.rows() == [
        ("model-000", "<ONNX, CPU>", 1, BAD[("model-000", "<ONNX, CPU>", 1)]),
        ("model-001", "<TORCH, CUDA>", 2, BAD[("model-001", "<TORCH, CUDA>", 2)]),
    ]
    assert selection.invalid_kept == 0


def test_keep_policy_keeps_and_counts_invalid_runs(runs):
    selection = select_runs(with_validity(runs, BAD), invalid_runs="keep")
    assert selection.runs.height == runs.height
    assert selection.excluded.is_empty()
    assert selection.invalid_kept == 2


def test_null_validity_counts_as_valid_and_a_missing_reason_is_said(runs):
    marked = with_validity(runs, BAD).with_columns(
        pl.when(pl.col("rep") == 0).then(None).otherwise(pl.col("valid")).alias("valid"),
        pl.lit(None, dtype=pl.String).alias("invalid_reasons"),
    )
    excluded = select_runs(marked).excluded
    assert excluded["reasons"].to_list() == ["invalid (no reason recorded)"] * 2


def test_configurations_left_out_of_the_analysis_only(runs):
    selection = select_runs(runs, exclude=["torchscript-cpu", "torchscript-cuda"])
    assert "torchscript" not in selection.runs["engine"].to_list()
    assert selection.excluded.height == 3 * 2 * 4
    assert set(selection.excluded["reasons"]) == {NOT_ANALYSED_REASON}
    only = select_runs(runs, include=["torch-cpu", "onnx-cpu"])
    assert set(only.runs["configuration"]) == {"<TORCH, CPU>", "<ONNX, CPU>"}


def test_a_run_left_out_twice_lists_both_reasons(runs):
    selection = select_runs(with_validity(runs, BAD), exclude=["onnx-cpu"])
    row = selection.excluded.filter(
        (pl.col("model") == "model-000") & (pl.col("configuration") == "<ONNX, CPU>")
        & (pl.col("rep") == 1)
    )  # fmt: skip
    assert row["reasons"].item() == f"{NOT_ANALYSED_REASON}; {BAD[('model-000', '<ONNX, CPU>', 1)]}"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"include": ["onnx-gpu"]}, "analysis.configurations.include"),
        ({"exclude": ["openvino-cuda"]}, "analysis.configurations.exclude"),
        ({"invalid_runs": "drop"}, "analysis.invalid_runs"),
    ],
)
def test_bad_settings_are_errors_naming_the_key(runs, kwargs, key):
    with pytest.raises(ValueError, match=key):
        select_runs(runs, **kwargs)


def test_bad_method_and_configuration_keys_are_errors(runs):
    with pytest.raises(ValueError, match="analysis.method"):
        method_named("papers")
    with pytest.raises(ValueError, match="analysis.configurations: unknown key"):
        prepare_analysis(runs, method="paper", configurations={"exlude": ["torchscript-cpu"]})


def test_the_schema_and_the_library_know_the_same_analysis_settings():
    from pathlib import Path

    import yaml

    schema = yaml.safe_load((Path(__file__).parents[2] / "config" / "schema.yaml").read_text())
    analysis = schema["properties"]["analysis"]["properties"]
    assert analysis["method"]["enum"] == ["paper", "extended"]
    assert analysis["invalid_runs"]["enum"] == ["exclude", "keep"]


# --- Labels ---------------------------------------------------------------------------------------


def labelled(runs: pl.DataFrame) -> pl.DataFrame:
    """The runs as a smoke study on a machine without sensors records them."""
    return runs.with_columns(
        pl.lit("estimate").alias("energy_cpu_method"),
        pl.lit(None, dtype=pl.Null).alias("energy_gpu_method"),
        pl.lit("cpu estimate only: no GPU present").alias("energy_global_method"),
        (pl.col("model") != "model-002").alias("standin"),
    )


def test_labels_name_estimates_and_standins(runs):
    labels = DataLabels.of(labelled(runs), PAPER)
    assert labels.method == "paper"
    assert labels.estimated == ("energy_cpu_method", "energy_global_method")
    assert labels.estimated_runs == runs.height
    assert labels.standin_models == ("model-000", "model-001")
    assert "ENERGY IS AN ESTIMATE" in labels.note and "STAND-IN MODELS" in labels.note
    # The paper's Table 4 global energy leaves out the GPU energy of CPU runs: said where the
    # CPU runs recorded any (a machine with a GPU), silent where it changes nothing.
    assert "CPU energy only" not in labels.note
    idle_gpu = labelled(runs).with_columns(pl.lit(30.0).alias("energy_gpu_j"))
    assert "CPU energy only" in DataLabels.of(idle_gpu, PAPER).note
    assert "CPU energy only" not in DataLabels.of(idle_gpu, EXTENDED).note
    assert labels.headline.startswith("analysis method: paper | energy: ESTIMATE")


def test_measured_energy_from_real_models_has_nothing_to_say(runs):
    measured = runs.with_columns(
        pl.lit("counter").alias("energy_cpu_method"), pl.lit(False).alias("standin")
    )
    labels = DataLabels.of(measured, EXTENDED)
    assert labels.note == ""
    assert labels.headline == "analysis method: extended"
    assert labels.caption("Table 4.") == "Table 4. Analysis method: extended."


def test_prepare_analysis_counts_what_it_left_out(runs):
    prepared = prepare_analysis(
        labelled(with_validity(runs, BAD)),
        method="extended",
        configurations={"exclude": ["torchscript-cuda"]},
        invalid_runs="keep",
    )
    assert prepared.method is EXTENDED
    assert prepared.labels.invalid_kept == 2
    assert prepared.labels.excluded_runs == 3 * 4
    assert "2 invalid run(s) kept" in prepared.labels.note


def test_labels_travel_into_every_csv_and_tex(tmp_path, runs):
    prepared = prepare_analysis(labelled(runs), method="paper")
    labels, analysed = prepared.labels, prepared.runs
    result = stats.analyse_runs(analysed, method=prepared.method)
    labels.with_columns(result.tests).write_csv(tmp_path / "tests.csv")
    stats.write_tests_latex(result.tests, tmp_path / "tests.tex", caption=labels.caption("Tests"))
    tables.write_size_category_table(
        tables.table4(analysed, prepared.method),
        tmp_path / "t4.csv",
        tmp_path / "t4.tex",
        caption="Table 4",
        label="t4",
        labels=labels,
    )
    ranges = tables.all_saving_ranges(analysed, method=prepared.method)
    labels.with_columns(ranges).write_csv(tmp_path / "savings.csv")
    tables.write_saving_sentences(ranges, tmp_path / "savings.md", prepared.method, labels)
    for name in ("tests.csv", "tests.tex", "t4.csv", "t4.tex", "savings.csv", "savings.md"):
        text = (tmp_path / name).read_text()
        assert "ESTIMATE" in text and "STAND-IN" in text, name
        assert "paper" in text, name
    table = pl.read_csv(tmp_path / "t4.csv")
    assert set(table["analysis_method"]) == {"paper"}
