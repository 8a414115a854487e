"""Tables 4 and 5, the saving ranges and the LaTeX writer on hand-checkable data."""

from __future__ import annotations

import re

import polars as pl
import pytest

from serving_energy.analysis import stats, tables
from serving_energy.analysis.latex import Column, booktabs, escape
from serving_energy.analysis.method import EXTENDED, PAPER
from serving_energy.analysis.metrics import METRICS

TORCH, ONNX = "<TORCH, CPU>", "<ONNX, CPU>"


def runs_from(values: dict[tuple[str, int, str], list[float]]) -> pl.DataFrame:
    """(model, size category, configuration) -> repetitions' energy; time = energy / 10."""
    rows = []
    for (model, size, configuration), reps in values.items():
        provider = "cuda" if "CUDA" in configuration else "cpu"
        for rep, energy in enumerate(reps):
            rows.append(
                {
                    "model": model,
                    "size_category": size,
                    "provider": provider,
                    "configuration": configuration,
                    "rep": rep,
                    "energy_global_j": energy,
                    "duration_s": energy / 10,
                }
            )
    return pl.DataFrame(rows)


# Medians differ from means on purpose, so the wrong order of aggregation gives other numbers.
HAND = runs_from(
    {
        ("m1", 1, TORCH): [1.0, 2.0, 9.0],  # median 2 (mean 4)
        ("m2", 1, TORCH): [3.0, 4.0, 5.0],  # median 4
        ("m3", 2, TORCH): [10.0, 20.0, 60.0],  # median 20 (mean 30)
        ("m1", 1, ONNX): [1.0, 1.0, 4.0],  # median 1
        ("m2", 1, ONNX): [2.0, 2.0, 2.0],  # median 2
        ("m3", 2, ONNX): [5.0, 6.0, 100.0],  # median 6
    }
)


def test_median_over_repetitions_then_mean_over_models():
    table = tables.size_category_table(HAND, "cpu", ["energy_global_j", "duration_s"])
    assert table.columns == [
        "size_category",
        "configuration",
        "n_models",
        "energy_global_j",
        "duration_s",
    ]
    assert table.select("size_category", "configuration").rows() == [
        ("1", TORCH),
        ("1", ONNX),
        ("2", TORCH),
        ("2", ONNX),
        ("all", TORCH),
        ("all", ONNX),
    ]
    energy = dict(
        zip(
            zip(table["size_category"], table["configuration"], strict=True),
            table["energy_global_j"],
            strict=True,
        )
    )
    assert energy[("1", TORCH)] == pytest.approx((2 + 4) / 2)
    assert energy[("1", ONNX)] == pytest.approx((1 + 2) / 2)
    assert energy[("2", TORCH)] == pytest.approx(20)
    # "all": the mean over all three models' medians, not the mean of the category means (11.5)
    assert energy[("all", TORCH)] == pytest.approx((2 + 4 + 20) / 3)
    assert energy[("all", ONNX)] == pytest.approx((1 + 2 + 6) / 3)
    assert table["n_models"].to_list() == [2, 2, 1, 1, 3, 3]
    assert table["duration_s"].to_list() == pytest.approx(
        [x / 10 for x in table["energy_global_j"]]
    )


def test_medians_per_model_counts_repetitions():
    medians = tables.medians_per_model(HAND, ["energy_global_j"])
    m3 = medians.filter(pl.col("model") == "m3")
    assert m3["configuration"].to_list() == [TORCH, ONNX]
    assert m3["energy_global_j"].to_list() == [20.0, 6.0]
    assert set(medians["n_reps"]) == {3}


def test_a_missing_configuration_only_drops_that_model_from_its_mean():
    partial = HAND.filter(~((pl.col("model") == "m2") & (pl.col("configuration") == ONNX)))
    table = tables.size_category_table(partial, "cpu", ["energy_global_j"])
    row = table.filter((pl.col("size_category") == "1") & (pl.col("configuration") == ONNX))
    assert row["n_models"].item() == 1
    assert row["energy_global_j"].item() == pytest.approx(1.0)


def test_table4_and_table5_columns(tmp_path):
    from synthetic import synthetic_runs

    runs = synthetic_runs(n_models=6, n_reps=3)
    table4, table5 = tables.table4(runs), tables.table5(runs)
    # The paper's columns, then energy per generated token (the CSVs' only, never in LaTeX).
    keys = ["size_category", "configuration", "n_models"]
    assert table4.columns == [*keys, *tables.TABLE4_METRICS, "energy_per_token_j"]
    assert table5.columns == [*keys, *tables.TABLE5_METRICS, "energy_per_token_j"]
    assert table4.height == 4 * 4  # (3 categories + all) x 4 CPU configurations
    assert table5.height == 4 * 3
    assert set(table5["configuration"]) == {"<TORCH, CUDA>", "<ONNX, CUDA>", "<JIT, CUDA>"}

    csv_path, tex_path = tables.write_size_category_table(
        table5, tmp_path / "t5.csv", tmp_path / "t5.tex", caption="Table 5", label="tab:t5"
    )
    assert pl.read_csv(csv_path, schema_overrides={"size_category": pl.Utf8}).equals(table5)
    tex = tex_path.read_text()
    assert tex.count(r"\begin{tabular}{llrrrrr}") == 1 and tex.count(r"\end{tabular}") == 1
    assert tex.count(r"\begin{table}") == 1 and r"\label{tab:t5}" in tex
    data_rows = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert len(data_rows) == 1 + table5.height  # header + one per row
    assert r"\textless{}TORCH, CUDA\textgreater{}" in tex
    assert "<" not in tex
    # size category printed once per group, groups separated by rules
    assert tex.count(r"\midrule") == 1 + 3
    assert all(re.match(r"^(1|2|3|all)? &", line) for line in data_rows[1:])


def test_paper_rounding_by_hand():
    """Each model's median rounded to 2 decimals before the mean, and the mean rounded again:
    1.004, 2.006, 3.333 -> 1.00, 2.01, 3.33 -> 2.11; with every digit the mean is 2.1143. No
    "all" row in the paper's tables."""
    runs = runs_from(
        {
            ("m1", 1, TORCH): [1.004, 1.004, 1.004],
            ("m2", 1, TORCH): [2.006, 2.006, 2.006],
            ("m3", 1, TORCH): [3.333, 3.333, 3.333],
        }
    )
    rounded = tables.size_category_table(
        runs, "cpu", ["energy_global_j"], round_medians_to=2, overall_row=None
    )
    assert rounded["size_category"].to_list() == ["1"]
    assert rounded["energy_global_j"].item() == round((1.00 + 2.01 + 3.33) / 3, 2) == 2.11
    full = tables.size_category_table(runs, "cpu", ["energy_global_j"])
    assert full["energy_global_j"].to_list()[0] == pytest.approx((1.004 + 2.006 + 3.333) / 3)


def test_paper_table4_global_energy_is_cpu_energy():
    """On a machine with a GPU, CPU runs' global energy includes the idle GPU; the paper's
    Table 4 printed CPU energy only, the extended method the per-run CPU + GPU sum. Table 5
    (CUDA runs) is the per-run sum under both methods."""
    runs = pl.DataFrame(
        {
            "model": ["m"] * 4,
            "size_category": [1] * 4,
            "provider": ["cpu", "cpu", "cuda", "cuda"],
            "configuration": [TORCH, TORCH, "<TORCH, CUDA>", "<TORCH, CUDA>"],
            "rep": [1, 2, 1, 2],
            "energy_cpu_j": [100.0, 110.0, 20.0, 22.0],
            "energy_gpu_j": [30.0, 30.0, 50.0, 60.0],
            "energy_global_j": [130.0, 140.0, 70.0, 82.0],
            "duration_s": [10.0, 11.0, 2.0, 2.2],
        }
    )
    assert tables.table4(runs, PAPER)["energy_global_j"].to_list() == [105.0]
    assert tables.table4(runs, EXTENDED)["energy_global_j"].to_list() == [135.0, 135.0]
    assert tables.table5(runs, PAPER)["energy_global_j"].to_list() == [76.0]
    # the tests use the runs as measured (the authors' tests read per-run CPU + GPU)
    assert PAPER.presented_runs(runs)["energy_global_j"].to_list() == [100.0, 110.0, 70.0, 82.0]


def test_best_vs_worst_savings_by_hand():
    runs = runs_from(
        {
            ("m1", 1, TORCH): [10.0],
            ("m1", 1, ONNX): [4.0],
            ("m1", 1, "<OV, CPU>"): [5.0],
            ("m2", 1, TORCH): [8.0],
            ("m2", 1, ONNX): [9.0],
            ("m2", 1, "<OV, CPU>"): [6.0],
            ("m3", 1, TORCH): [3.0],  # one configuration: nothing to compare
        }
    )
    savings = tables.best_vs_worst_savings(runs, "cpu", "energy_global_j")
    assert savings.rows() == [
        ("m1", ONNX, TORCH, 4.0, 10.0, pytest.approx(60.0)),
        ("m2", "<OV, CPU>", ONNX, 6.0, 9.0, pytest.approx(100 / 3)),
    ]
    (row,) = tables.best_vs_worst_ranges(runs, "cpu", "energy_global_j").iter_rows(named=True)
    assert row["configuration"] == "<ONNX, CPU> / <OV, CPU>"
    assert row["baseline"] == "<TORCH, CPU> / <ONNX, CPU>"
    assert (row["min_saving_model"], row["max_saving_model"]) == ("m2", "m1")
    assert row["sentence"] == (
        "the best CPU configuration of each model (<ONNX, CPU> for 1, <OV, CPU> for 1) against "
        "its worst (<TORCH, CPU> for 1, <ONNX, CPU> for 1): global energy savings from 33.33 % "
        "up to 60.00 %"
    )


def test_paper_savings_one_row_per_provider_and_metric():
    from synthetic import synthetic_runs

    runs = synthetic_runs(n_models=3, n_reps=3)
    ranges = tables.all_saving_ranges(runs, method=PAPER)
    assert ranges.select("provider", "metric").rows() == [
        ("cpu", "energy_global_j"),
        ("cpu", "duration_s"),
        ("cuda", "energy_global_j"),
        ("cuda", "duration_s"),
    ]


# --- Saving ranges ---------------------------------------------------------------------------


def test_saving_ranges_by_hand():
    ranges = tables.saving_ranges(HAND, "cpu", "energy_global_j")
    assert ranges.columns == list(tables.SAVING_RANGE_SCHEMA)
    (row,) = ranges.iter_rows(named=True)
    # per model: m1 (2-1)/2 = 50 %, m2 (4-2)/4 = 50 %, m3 (20-6)/20 = 70 %
    assert row["configuration"] == ONNX and row["baseline"] == TORCH
    assert row["n_models"] == 3
    assert row["min_saving_pct"] == pytest.approx(50.0)
    assert row["max_saving_pct"] == pytest.approx(70.0)
    assert row["max_saving_model"] == "m3"
    assert row["sentence"] == (
        "<ONNX, CPU> against <TORCH, CPU>: global energy savings from 50.00 % up to 70.00 %"
    )


def test_model_savings_sign_and_columns():
    savings = tables.model_savings(HAND, "cpu", "duration_s")
    assert savings.columns == [
        "model",
        "size_category",
        "provider",
        "metric",
        "configuration",
        "baseline",
        "median",
        "baseline_median",
        "saving_pct",
    ]
    assert savings.sort("model")["saving_pct"].to_list() == pytest.approx([50.0, 50.0, 70.0])


def test_saving_sentences_for_increases_and_mixed_ranges():
    assert "increases from 5.00 % up to 20.00 %" in tables.saving_sentence(
        "duration_s", ONNX, TORCH, -20.0, -5.0
    )
    mixed = tables.saving_sentence("energy_global_j", ONNX, TORCH, -3.0, 12.5)
    assert "changes from -3.00 % to 12.50 % (negative values are increases)" in mixed


def test_all_saving_ranges_and_sentence_file(tmp_path):
    from synthetic import synthetic_runs

    runs = synthetic_runs(n_models=3, n_reps=3)
    ranges = tables.all_saving_ranges(runs)
    # CPU: 3 configurations x 2 metrics; CUDA: 2 x 2
    assert ranges.height == 3 * 2 + 2 * 2
    assert set(ranges["baseline"]) == {"<TORCH, CPU>", "<TORCH, CUDA>"}
    text = tables.write_saving_sentences(ranges, tmp_path / "savings.md").read_text()
    assert text.count("\n- ") == ranges.height


def test_saving_ranges_without_baseline_runs_are_empty():
    no_baseline = HAND.filter(pl.col("configuration") != TORCH)
    assert tables.saving_ranges(no_baseline, "cpu").height == 0


# --- LaTeX ------------------------------------------------------------------------------------


def test_latex_escaping_and_missing_values():
    assert escape("50% of <ONNX, CPU> & a_b") == (
        r"50\% of \textless{}ONNX, CPU\textgreater{} \& a\_b"
    )
    frame = pl.DataFrame({"name": ["a", "b"], "value": [1.234, None], "flag": [True, False]})
    tex = booktabs(
        frame, [Column("name", "Name", align="l"), Column("value", "V"), Column("flag", "F")]
    )
    assert tex.splitlines()[0] == r"\begin{tabular}{lrr}"
    assert "a & 1.23 & yes" in tex and "b & -- & no" in tex


def test_longtable_for_the_statistics(tmp_path):
    from synthetic import synthetic_runs

    result = stats.analyse_runs(synthetic_runs(n_models=2, n_reps=4), metrics=METRICS[:2])
    tests_tex = stats.write_tests_latex(result.tests, tmp_path / "tests.tex").read_text()
    posthoc_tex = stats.write_posthoc_latex(result.posthoc, tmp_path / "posthoc.tex").read_text()
    for tex in (tests_tex, posthoc_tex):
        assert tex.count(r"\begin{longtable}") == 1 and tex.count(r"\end{longtable}") == 1
        assert r"\endhead" in tex and "_" not in tex.replace(r"\_", "")
    omnibus_and_levene = result.tests.filter(pl.col("test") != "shapiro").height
    body = tests_tex.split(r"\endfoot")[1]
    assert sum(line.endswith(r"\\") for line in body.splitlines()) == omnibus_and_levene
    body = posthoc_tex.split(r"\endfoot")[1]
    assert sum(line.endswith(r"\\") for line in body.splitlines()) == result.posthoc.height
