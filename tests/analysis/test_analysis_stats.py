"""The statistics against independent implementations and hand computations."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pingouin
import polars as pl
import pytest
from scipy import stats as scipy_stats
from synthetic import synthetic_runs

from serving_energy.analysis import stats
from serving_energy.analysis.method import EXTENDED, PAPER
from serving_energy.analysis.metrics import METRICS
from serving_energy.analysis.stats import (
    FAIL_TO_REJECT,
    NOT_TESTABLE,
    PAIR_SCHEMA,
    REJECT,
    TEST_SCHEMA,
    analyse_runs,
    cliffs_delta,
    cliffs_delta_magnitude,
    compare_configurations,
    hedges_g,
    saving_pct,
)
from serving_energy.study.vocabulary import Configuration

# Every test here fails on a warning: a degenerate input must become a row, not a warning.
pytestmark = pytest.mark.filterwarnings("error")


def normal_sample(mean: float, sd: float, n: int = 10) -> np.ndarray:
    """Exact normal quantiles: Shapiro-Wilk cannot reject these, whatever the seed."""
    return mean + sd * scipy_stats.norm.ppf((np.arange(n) + 0.5) / n)


NORMAL_GROUPS = {
    "<TORCH, CPU>": normal_sample(100.0, 5.0),
    "<ONNX, CPU>": normal_sample(80.0, 15.0),
    "<OV, CPU>": normal_sample(95.0, 2.0, n=8),
}

# Kruskal-Wallis textbook-style example with a tie block; A is far from normal.
KW_GROUPS = {
    "A": np.array([1.0, 1.0, 1.0, 1.0, 9.0]),
    "B": np.array([2.0, 3.0, 4.0, 5.0, 6.0]),
    "C": np.array([7.0, 8.0, 10.0, 11.0, 12.0]),
}


def rows_of(rows, test):
    return [r for r in rows if r.test == test]


def long_frame(groups: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "value": np.concatenate(list(groups.values())),
            "group": np.repeat(list(groups), [len(v) for v in groups.values()]),
        }
    )


# --- Welch's ANOVA and Games-Howell against pingouin --------------------------------------------


def test_normal_groups_take_welch_anova_matching_pingouin():
    tests, _ = compare_configurations("m", "cpu", "energy_global_j", NORMAL_GROUPS)
    assert all(r.decision == FAIL_TO_REJECT for r in rows_of(tests, "shapiro"))
    (welch,) = rows_of(tests, "welch_anova")
    assert rows_of(tests, "kruskal") == []

    reference = pingouin.welch_anova(data=long_frame(NORMAL_GROUPS), dv="value", between="group")
    assert welch.statistic == pytest.approx(reference["F"].iloc[0], rel=1e-9)
    assert welch.df1 == pytest.approx(reference["ddof1"].iloc[0], rel=1e-9)
    assert welch.df2 == pytest.approx(reference["ddof2"].iloc[0], rel=1e-9)
    assert welch.p_value == pytest.approx(reference["p_unc"].iloc[0], rel=1e-6)
    assert welch.decision == REJECT
    assert welch.n == 28


def test_games_howell_pairs_match_pingouin():
    _, pairs = compare_configurations("m", "cpu", "energy_global_j", NORMAL_GROUPS)
    reference = pingouin.pairwise_gameshowell(
        data=long_frame(NORMAL_GROUPS), dv="value", between="group"
    )
    assert len(pairs) == 3
    assert {p.test for p in pairs} == {"games_howell"}
    for pair in pairs:
        match = reference[
            ((reference["A"] == pair.group_a) & (reference["B"] == pair.group_b))
            | ((reference["A"] == pair.group_b) & (reference["B"] == pair.group_a))
        ]
        assert len(match) == 1
        sign = 1.0 if match["A"].iloc[0] == pair.group_a else -1.0
        assert pair.p_value == pytest.approx(match["pval"].iloc[0], abs=1e-4)
        assert pair.mean_diff == pytest.approx(sign * match["diff"].iloc[0], rel=1e-9)


def test_pairs_put_the_earlier_configuration_as_group_b():
    _, pairs = compare_configurations("m", "cpu", "energy_global_j", NORMAL_GROUPS)
    assert [(p.group_a, p.group_b) for p in pairs] == [
        ("<ONNX, CPU>", "<TORCH, CPU>"),
        ("<OV, CPU>", "<TORCH, CPU>"),
        ("<OV, CPU>", "<ONNX, CPU>"),
    ]
    onnx_vs_torch = pairs[0]
    assert onnx_vs_torch.saving_pct == pytest.approx((100.0 - 80.0) / 100.0 * 100.0)


# --- Kruskal-Wallis and Dunn against hand computations ----------------------------------------


def test_non_normal_group_takes_kruskal_with_hand_computed_h():
    tests, _ = compare_configurations("m", "cpu", "duration_s", KW_GROUPS)
    shapiro_a = next(r for r in rows_of(tests, "shapiro") if r.configuration == "A")
    assert shapiro_a.decision == REJECT
    (kruskal,) = rows_of(tests, "kruskal")
    assert rows_of(tests, "welch_anova") == []
    # Ranks: A = 2.5*4 + 12 = 22, B = 35, C = 63; N = 15, one tie block of four.
    h = 12 / (15 * 16) * (22**2 + 35**2 + 63**2) / 5 - 3 * 16  # 8.78
    tie_correction = 1 - (4**3 - 4) / (15**3 - 15)
    expected_h = h / tie_correction
    assert expected_h == pytest.approx(8.939636, rel=1e-6)
    assert kruskal.statistic == pytest.approx(expected_h, rel=1e-9)
    assert kruskal.df1 == 2
    # chi-square with two degrees of freedom: sf(x) = exp(-x / 2)
    assert kruskal.p_value == pytest.approx(np.exp(-expected_h / 2), rel=1e-9)
    assert kruskal.decision == REJECT
    assert "A (p < alpha)" in kruskal.reason


def test_dunn_holm_matches_hand_computation():
    _, pairs = compare_configurations("m", "cpu", "duration_s", KW_GROUPS, rank_posthoc="dunn_holm")
    mean_rank = {"A": 22 / 5, "B": 35 / 5, "C": 63 / 5}
    n_total, tie_sum = 15, 4**3 - 4
    variance = n_total * (n_total + 1) / 12 - tie_sum / (12 * (n_total - 1))
    raw = {}
    for a, b in itertools.combinations("ABC", 2):
        z = (mean_rank[a] - mean_rank[b]) / np.sqrt(variance * (1 / 5 + 1 / 5))
        raw[frozenset((a, b))] = 2 * scipy_stats.norm.sf(abs(z))
    # Holm: multiply the i-th smallest by (m - i), then make monotone.
    ordered = sorted(raw.items(), key=lambda item: item[1])
    holm, running = {}, 0.0
    for i, (key, p) in enumerate(ordered):
        running = max(running, min(1.0, p * (len(ordered) - i)))
        holm[key] = running
    assert holm[frozenset("AC")] == pytest.approx(0.010324, abs=1e-5)
    assert {p.test for p in pairs} == {"dunn_holm"}
    for pair in pairs:
        assert pair.p_value == pytest.approx(holm[frozenset((pair.group_a, pair.group_b))])
        assert pair.mean_diff is None
    significant = {frozenset((p.group_a, p.group_b)) for p in pairs if p.significant}
    assert significant == {frozenset("AC")}


def test_mannwhitney_holm_matches_scipy_and_hand_holm():
    _, pairs = compare_configurations("m", "cpu", "duration_s", KW_GROUPS)
    assert {p.test for p in pairs} == {"mannwhitney_holm"}
    raw = {
        frozenset((a, b)): scipy_stats.mannwhitneyu(
            KW_GROUPS[a], KW_GROUPS[b], alternative="two-sided"
        ).pvalue
        for a, b in itertools.combinations("ABC", 2)
    }
    ordered = sorted(raw.items(), key=lambda item: item[1])
    holm, running = {}, 0.0
    for i, (key, p) in enumerate(ordered):
        running = max(running, min(1.0, p * (len(ordered) - i)))
        holm[key] = running
    for pair in pairs:
        assert pair.p_value == pytest.approx(holm[frozenset((pair.group_a, pair.group_b))])
    # B and C share no value and 5 + 5 observations: the exact test, 2 / C(10, 5) = 0.0079
    assert raw[frozenset("BC")] == pytest.approx(2 / 252)


def test_holm_by_hand():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]) == []


SEPARATED = {  # four configurations, ten repetitions each, every group above the previous one
    f"<{engine}, CPU>": np.arange(10.0) + 10 * index
    for index, engine in enumerate(("TORCH", "ONNX", "OV", "JIT"))
}


def test_dunn_holm_cannot_separate_neighbours_at_ten_repetitions():
    """The power limit the extended method works around (docs/analysis.md): with 4
    configurations of 10 repetitions, even perfectly separated neighbours (Cliff's delta 1)
    get a Dunn-Holm p of 0.167, while pairwise exact Mann-Whitney tests with Holm separate
    every pair."""
    tests, dunn = compare_configurations(
        "m", "cpu", "duration_s", SEPARATED, family="rank", rank_posthoc="dunn_holm"
    )
    assert rows_of(tests, "kruskal")[0].decision == REJECT
    neighbours = [p for p in dunn if abs(p.median_a - p.median_b) == 10]
    assert len(neighbours) == 3
    for pair in neighbours:
        assert abs(pair.cliffs_delta) == 1.0
        assert pair.p_value == pytest.approx(0.167, abs=0.001)
        assert pair.significant is False
    _, mannwhitney = compare_configurations("m", "cpu", "duration_s", SEPARATED, family="rank")
    assert all(p.significant for p in mannwhitney)
    # exact two-sided p of complete separation, 2 / C(20, 10), times Holm's 6 at most
    assert max(p.p_value for p in mannwhitney) <= 6 * 2 / 184756


def test_fixed_families_ignore_normality():
    _, parametric = compare_configurations("m", "cpu", "duration_s", KW_GROUPS, family="parametric")
    assert {p.test for p in parametric} == {"games_howell"}
    tests, rank = compare_configurations(
        "m", "cpu", "energy_global_j", NORMAL_GROUPS, family="rank", rank_posthoc="dunn_holm"
    )
    assert "Table 3" in rows_of(tests, "kruskal")[0].reason
    assert {p.test for p in rank} == {"dunn_holm"}


def test_ungated_pairs_are_significant_on_their_own_p_value():
    """The authors marked a pair significant when its post-hoc p < 0.05, whatever the omnibus
    test said; the extended method also asks the omnibus test to reject. Two groups apart among
    three noisy ones: Welch's ANOVA does not reject (p = 0.094), Games-Howell's A-B pair has
    p = 0.038."""
    groups = {
        "A": normal_sample(9.3, 1.0),
        "B": normal_sample(10.7, 1.0),
        **{name: normal_sample(10.0, 5.0) for name in "CDE"},
    }
    tests, gated = compare_configurations("m", "cpu", "duration_s", groups, family="parametric")
    _, ungated = compare_configurations(
        "m", "cpu", "duration_s", groups, family="parametric", gate_posthoc=False
    )
    assert rows_of(tests, "welch_anova")[0].decision == FAIL_TO_REJECT
    assert not any(p.significant for p in gated)
    assert [(p.group_a, p.group_b) for p in ungated if p.significant] == [("B", "A")]
    assert all(p.significant == (p.p_value < 0.05) for p in ungated)


def test_an_identical_pair_inside_a_rank_comparison_gets_p_one():
    groups = {"A": np.full(5, 1.0), "B": np.full(5, 1.0), "C": np.arange(5.0) + 3}
    _, pairs = compare_configurations("m", "cpu", "duration_s", groups, family="rank")
    same = next(p for p in pairs if {p.group_a, p.group_b} == {"A", "B"})
    assert same.p_value == 1.0 and same.significant is False


# --- Effect sizes and savings ------------------------------------------------------------------


def test_cliffs_delta_by_hand():
    # 1 vs (2,2,4): -3; 2 vs: 0+0-1; 3 vs: +1+1-1  => -3/9
    assert cliffs_delta([1, 2, 3], [2, 2, 4]) == pytest.approx(-1 / 3)
    assert cliffs_delta([5, 6], [1, 2]) == 1.0
    assert cliffs_delta_magnitude(-1 / 3) == "medium"
    assert cliffs_delta_magnitude(0.1) == "negligible"
    assert cliffs_delta_magnitude(0.2) == "small"
    assert cliffs_delta_magnitude(-0.9) == "large"


def test_hedges_g_matches_pingouin():
    a, b = NORMAL_GROUPS["<TORCH, CPU>"], NORMAL_GROUPS["<ONNX, CPU>"]
    assert hedges_g(a, b) == pytest.approx(pingouin.compute_effsize(a, b, eftype="hedges"))
    assert hedges_g([1.0, 1.0], [2.0, 2.0]) is None


def test_saving_pct_is_relative_to_b():
    assert saving_pct(60.0, 100.0) == pytest.approx(40.0)
    assert saving_pct(150.0, 100.0) == pytest.approx(-50.0)
    assert saving_pct(1.0, 0.0) is None


# --- Not testable -----------------------------------------------------------------------------


def test_configuration_with_two_repetitions_is_left_out_and_said_so():
    groups = {**NORMAL_GROUPS, "<JIT, CPU>": np.array([90.0, 91.0])}
    tests, pairs = compare_configurations("m", "cpu", "energy_global_j", groups)
    jit = next(r for r in rows_of(tests, "shapiro") if r.configuration == "<JIT, CPU>")
    assert jit.decision == NOT_TESTABLE
    assert "2 repetition(s)" in jit.reason
    (welch,) = rows_of(tests, "welch_anova")
    assert "<JIT, CPU>" in welch.reason and welch.decision == REJECT
    assert all("<JIT, CPU>" not in (p.group_a, p.group_b) for p in pairs)


def test_single_configuration_is_not_testable():
    tests, pairs = compare_configurations(
        "m", "cuda", "gpu_usage_pct", {"<TORCH, CUDA>": normal_sample(40, 3)}
    )
    assert [r.test for r in tests] == ["shapiro", "levene", "omnibus"]
    assert tests[-1].decision == NOT_TESTABLE
    assert "1 configuration(s)" in tests[-1].reason
    assert pairs == []


def test_no_configuration_is_not_testable():
    tests, pairs = compare_configurations("m", "cuda", "gpu_usage_pct", {})
    assert [r.decision for r in tests] == [NOT_TESTABLE, NOT_TESTABLE]
    assert pairs == []


def test_all_values_equal_is_not_testable():
    constant = {c: np.full(10, 12.5) for c in ("<TORCH, CUDA>", "<ONNX, CUDA>", "<JIT, CUDA>")}
    tests, pairs = compare_configurations("m", "cuda", "gpu_mem_used_pct", constant)
    assert all(r.decision == NOT_TESTABLE for r in tests)
    assert {r.reason for r in rows_of(tests, "shapiro")} == {"zero variance"}
    (kruskal,) = rows_of(tests, "kruskal")
    assert "identical" in kruskal.reason
    assert pairs == []


def test_one_constant_configuration_takes_the_rank_path():
    groups = {
        "<TORCH, CUDA>": np.full(10, 30.0),
        "<ONNX, CUDA>": normal_sample(20.0, 1.0),
        "<JIT, CUDA>": normal_sample(31.0, 1.0),
    }
    tests, pairs = compare_configurations("m", "cuda", "gpu_mem_used_pct", groups)
    (kruskal,) = rows_of(tests, "kruskal")
    assert kruskal.decision == REJECT
    assert "<TORCH, CUDA> (zero variance)" in kruskal.reason
    torch_vs_onnx = next(p for p in pairs if p.group_b == "<TORCH, CUDA>")
    assert torch_vs_onnx.hedges_g is not None
    assert len(pairs) == 3


def test_nan_values_are_dropped_not_propagated():
    groups = {name: np.append(v, np.nan) for name, v in NORMAL_GROUPS.items()}
    tests, _ = compare_configurations("m", "cpu", "energy_global_j", groups)
    (welch,) = rows_of(tests, "welch_anova")
    assert welch.n == 28


# --- The whole study ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_study() -> pl.DataFrame:
    return synthetic_runs(n_models=3, n_reps=5, seed=1)


def test_analyse_runs_tidy_schema_and_groups(small_study):
    result = analyse_runs(small_study)
    assert result.tests.schema == pl.Schema(TEST_SCHEMA)
    assert result.posthoc.schema == pl.Schema(PAIR_SCHEMA)
    assert set(result.tests["provider_group"]) == {"cpu", "cuda"}
    gpu_metrics = {"energy_gpu_j", "gpu_usage_pct", "gpu_mem_util_pct", "gpu_mem_used_pct"}
    cpu_metrics = set(result.tests.filter(pl.col("provider_group") == "cpu")["metric"])
    assert cpu_metrics.isdisjoint(gpu_metrics)
    cuda_configs = set(
        result.tests.filter(pl.col("provider_group") == "cuda")["configuration"].drop_nulls()
    )
    assert cuda_configs == {
        Configuration(e, "cuda").label for e in ("torch", "onnx", "torchscript")
    }
    # one omnibus row per model, group and metric: 3 models x (5 CPU + 9 CUDA metrics)
    omnibus = result.tests.filter(pl.col("test").is_in(["welch_anova", "kruskal", "omnibus"]))
    assert omnibus.height == 3 * (5 + 9)
    # constant GPU memory in the synthetic study: never testable, never a crash
    gpu_mem = result.tests.filter(pl.col("metric") == "gpu_mem_used_pct")
    assert set(gpu_mem["decision"]) == {NOT_TESTABLE}
    # 4 CPU configurations -> 6 pairs, 3 CUDA ones -> 3 pairs per model and testable metric
    pairs_per = result.posthoc.group_by("model", "provider_group", "metric").len()
    assert set(pairs_per.filter(pl.col("provider_group") == "cpu")["len"]) == {6}
    assert set(pairs_per.filter(pl.col("provider_group") == "cuda")["len"]) == {3}


def test_analyse_runs_all_configurations_together(small_study):
    together = dataclasses.replace(EXTENDED, grouping="all")
    result = analyse_runs(small_study, method=together, metrics=METRICS[:3])
    assert set(result.tests["provider_group"]) == {"all"}
    energy = result.posthoc.filter(pl.col("metric") == "energy_global_j")
    assert energy.group_by("model").len()["len"].to_list() == [21, 21, 21]  # 7 choose 2
    gpu = result.posthoc.filter(pl.col("metric") == "energy_gpu_j")
    assert gpu.group_by("model").len()["len"].to_list() == [3, 3, 3]  # CUDA only


def test_analyse_runs_checks_its_parameters(small_study):
    with pytest.raises(ValueError, match="alpha"):
        analyse_runs(small_study, alpha=1.5)
    with pytest.raises(ValueError, match="grouping"):
        analyse_runs(small_study, method=dataclasses.replace(EXTENDED, grouping="per_engine"))


def test_paper_method_tests_the_papers_variables_its_way(small_study):
    """All five non-JIT configurations of a model in one comparison, the test fixed per
    variable (Welch + Games-Howell for energy, time, CPU and RAM; Kruskal-Wallis + Dunn-Holm for
    the GPU metrics, among the CUDA configurations), no separate CPU/GPU energy tests."""
    no_jit = small_study.filter(pl.col("engine") != "torchscript")
    result = analyse_runs(no_jit, method=PAPER)
    assert set(result.tests["provider_group"]) == {"all"}
    assert set(result.tests["metric"]) == set(PAPER.tests)
    omnibus = result.tests.filter(pl.col("test").is_in(["welch_anova", "kruskal"]))
    by_metric = dict(zip(omnibus["metric"], omnibus["test"], strict=True))
    assert by_metric["energy_global_j"] == by_metric["cpu_usage_pct"] == "welch_anova"
    assert by_metric["gpu_usage_pct"] == "kruskal"
    pairs = result.posthoc.group_by("metric").agg(pl.len() / 3, pl.col("test").unique())
    counts = dict(zip(pairs["metric"], pairs["len"], strict=True))
    assert counts["energy_global_j"] == 10  # 5 configurations together: 5 choose 2
    assert counts["gpu_usage_pct"] == 1  # <TORCH, CUDA> against <ONNX, CUDA>
    tests_of = dict(zip(pairs["metric"], pairs["test"], strict=True))
    assert tests_of["gpu_usage_pct"].to_list() == ["dunn_holm"]
    assert tests_of["duration_s"].to_list() == ["games_howell"]


def test_alpha_moves_the_decision():
    tests_strict, _ = compare_configurations("m", "cpu", "duration_s", KW_GROUPS, alpha=0.01)
    tests_loose, _ = compare_configurations("m", "cpu", "duration_s", KW_GROUPS, alpha=0.05)
    assert rows_of(tests_strict, "kruskal")[0].decision == FAIL_TO_REJECT  # p = 0.0114
    assert rows_of(tests_loose, "kruskal")[0].decision == REJECT


def test_a_library_warning_becomes_a_not_testable_row(monkeypatch):
    def warning_kruskal(*groups):
        import warnings

        warnings.warn("precision loss on these data", RuntimeWarning, stacklevel=2)
        return scipy_stats.kruskal(*groups)

    monkeypatch.setattr(stats.scipy_stats, "kruskal", warning_kruskal)
    tests, pairs = compare_configurations("m", "cpu", "duration_s", KW_GROUPS)
    (kruskal,) = rows_of(tests, "kruskal")
    assert kruskal.decision == NOT_TESTABLE
    assert kruskal.statistic is None and "precision loss" in kruskal.reason
    assert pairs == []
