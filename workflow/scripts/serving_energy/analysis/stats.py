"""The paper's statistical tests, per model and dependent variable, as tidy tables.

For every model, dependent variable (``Metric``) and group of configurations (all of a model's
analysed configurations, or those of one provider: ``AnalysisMethod.grouping``):

1. Shapiro-Wilk per configuration and Levene (median-centred) across configurations.
2. The omnibus test and its post-hoc test, chosen per variable by the method
   (``AnalysisMethod.tests``):
   - ``parametric``: Welch's ANOVA (statsmodels ``anova_oneway(use_var="unequal")``) and
     Games-Howell (scikit-posthocs ``posthoc_games_howell``);
   - ``rank``: Kruskal-Wallis (scipy) and a rank post-hoc: Dunn's test with Holm's correction
     (scikit-posthocs ``posthoc_dunn(p_adjust="holm")``, the paper's) or pairwise Mann-Whitney U
     tests with Holm's correction (ours: Dunn-Holm cannot separate anything at 10 repetitions and
     4 configurations, see docs/analysis.md);
   - ``by_normality``: ``parametric`` when every compared configuration's Shapiro-Wilk fails to
     reject normality, ``rank`` otherwise.

Levene is reported but does not steer the choice: Welch's ANOVA and Games-Howell do not assume
equal variances, and the rank path does not either.

Every pair also gets Cliff's delta, Hedges' g and the percentage saving based on medians.
Nothing that cannot be tested crashes: it becomes a row whose decision is ``"not testable"`` and
whose ``reason`` says why. Library warnings are turned into such rows, never into numbers.
"""

from __future__ import annotations

import gc
import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import polars as pl
import scikit_posthocs
from scipy import stats as scipy_stats
from statsmodels.stats.oneway import anova_oneway

from serving_energy.analysis.latex import Column, write_booktabs
from serving_energy.analysis.method import EXTENDED, AnalysisMethod, RankPosthoc, TestFamily
from serving_energy.analysis.metrics import METRICS, Metric
from serving_energy.study.vocabulary import PROVIDERS, order_configurations

ProviderGrouping = Literal["by_provider", "all"]

REJECT = "reject H0"
FAIL_TO_REJECT = "fail to reject H0"
NOT_TESTABLE = "not testable"

MIN_REPETITIONS = 3  # Shapiro-Wilk is undefined below three observations


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class TestRow:
    model: str
    provider_group: str
    metric: str
    test: str  # shapiro | levene | welch_anova | kruskal
    configuration: str | None
    n: int
    statistic: float | None
    df1: float | None
    df2: float | None
    p_value: float | None
    alpha: float
    decision: str
    reason: str | None


@dataclass(frozen=True)
class PairRow:
    model: str
    provider_group: str
    metric: str
    test: str  # games_howell | dunn_holm | mannwhitney_holm
    group_a: str
    group_b: str
    n_a: int
    n_b: int
    median_a: float
    median_b: float
    mean_diff: float | None  # mean_a - mean_b (Games-Howell); None for Dunn
    p_value: float | None
    omnibus_rejected: bool
    significant: bool | None
    cliffs_delta: float
    magnitude: str
    hedges_g: float | None
    saving_pct: float | None  # saving of group_a against group_b, from medians


TEST_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.Utf8,
    "provider_group": pl.Utf8,
    "metric": pl.Utf8,
    "test": pl.Utf8,
    "configuration": pl.Utf8,
    "n": pl.Int64,
    "statistic": pl.Float64,
    "df1": pl.Float64,
    "df2": pl.Float64,
    "p_value": pl.Float64,
    "alpha": pl.Float64,
    "decision": pl.Utf8,
    "reason": pl.Utf8,
}
PAIR_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.Utf8,
    "provider_group": pl.Utf8,
    "metric": pl.Utf8,
    "test": pl.Utf8,
    "group_a": pl.Utf8,
    "group_b": pl.Utf8,
    "n_a": pl.Int64,
    "n_b": pl.Int64,
    "median_a": pl.Float64,
    "median_b": pl.Float64,
    "mean_diff": pl.Float64,
    "p_value": pl.Float64,
    "omnibus_rejected": pl.Boolean,
    "significant": pl.Boolean,
    "cliffs_delta": pl.Float64,
    "magnitude": pl.Utf8,
    "hedges_g": pl.Float64,
    "saving_pct": pl.Float64,
}


@dataclass(frozen=True)
class StatsResult:
    """``tests``: one row per test run; ``posthoc``: one row per compared pair."""

    tests: pl.DataFrame
    posthoc: pl.DataFrame


# ---------------------------------------------------------------------------------------------
# Effect sizes and savings


def cliffs_delta(a: Sequence[float], b: Sequence[float]) -> float:
    """P(a > b) - P(a < b) over all pairs: in [-1, 1], positive when ``a`` tends to be larger."""
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.size == 0 or b_arr.size == 0:
        raise ValueError("Cliff's delta needs two non-empty samples")
    return float(np.sign(a_arr[:, None] - b_arr[None, :]).mean())


def cliffs_delta_magnitude(delta: float) -> str:
    """Romano et al. (2006) thresholds: 0.147, 0.33, 0.474."""
    size = abs(delta)
    if size < 0.147:
        return "negligible"
    if size < 0.33:
        return "small"
    if size < 0.474:
        return "medium"
    return "large"


def hedges_g(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Bias-corrected standardised mean difference (a - b); None where the pooled SD is zero."""
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n_a, n_b = a_arr.size, b_arr.size
    if n_a < 2 or n_b < 2:
        return None
    pooled_var = ((n_a - 1) * a_arr.var(ddof=1) + (n_b - 1) * b_arr.var(ddof=1)) / (n_a + n_b - 2)
    if pooled_var <= 0:
        return None
    correction = 1.0 - 3.0 / (4.0 * (n_a + n_b) - 9.0)
    return float((a_arr.mean() - b_arr.mean()) / np.sqrt(pooled_var) * correction)


def saving_pct(median_a: float, median_b: float) -> float | None:
    """How much less ``a`` uses than ``b``, in percent of ``b``: (b - a) / b * 100.

    Positive: ``a`` saves; negative: ``a`` uses more. None where ``b`` is zero.
    """
    if median_b == 0 or not np.isfinite(median_b) or not np.isfinite(median_a):
        return None
    return float((median_b - median_a) / median_b * 100.0)


# ---------------------------------------------------------------------------------------------
# The tests of one (model, provider group, metric)


@dataclass(frozen=True)
class _Comparison:
    model: str
    provider_group: str
    metric: str
    alpha: float

    def row(self, test: str, **fields: object) -> TestRow:
        values: dict[str, object] = {
            "configuration": None,
            "n": 0,
            "statistic": None,
            "df1": None,
            "df2": None,
            "p_value": None,
            "decision": NOT_TESTABLE,
            "reason": None,
        }
        values.update(fields)
        return TestRow(
            model=self.model,
            provider_group=self.provider_group,
            metric=self.metric,
            test=test,
            alpha=self.alpha,
            **values,  # type: ignore[arg-type]
        )

    def decide(self, p_value: float) -> str:
        return REJECT if p_value < self.alpha else FAIL_TO_REJECT


def _is_constant(values: np.ndarray) -> bool:
    return bool(np.ptp(values) == 0)


def _strict(call, *args, **kwargs):
    """Run a library test with its data warnings as errors, so a degenerate input cannot pass as
    a result. scipy's and statsmodels' data warnings are RuntimeWarning or UserWarning
    subclasses; Deprecation/FutureWarnings are about the code, not the data, and stay warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("error", UserWarning)
        return call(*args, **kwargs)


# What a library test may raise on degenerate input (warnings are raised by ``_strict``).
_TEST_FAILURES = (ValueError, FloatingPointError, ZeroDivisionError, np.linalg.LinAlgError, Warning)


def _finite_or_raise(*numbers: float) -> None:
    if not all(np.isfinite(x) for x in numbers):
        raise FloatingPointError("the test returned a non-finite value")


def _tested(
    cmp: _Comparison,
    test: str,
    n: int,
    run: Callable[[], tuple[float, float, float | None, float | None]],
    why: str | None = None,
    **fields: object,
) -> TestRow:
    """The row of one library test. ``run`` returns (statistic, p-value, df1, df2), its data
    warnings raised by ``_strict``; a failure or a non-finite result is a not-testable row with
    the reason (after ``why``, the reason the test was chosen)."""
    try:
        statistic, p_value, df1, df2 = run()
        _finite_or_raise(statistic, p_value, *(df for df in (df1, df2) if df is not None))
    except _TEST_FAILURES as error:
        return cmp.row(test, n=n, reason=f"{why}; {error}" if why else str(error), **fields)
    return cmp.row(
        test,
        n=n,
        statistic=float(statistic),
        df1=df1,
        df2=df2,
        p_value=float(p_value),
        decision=cmp.decide(float(p_value)),
        reason=why,
        **fields,
    )


def _shapiro(cmp: _Comparison, configuration: str, values: np.ndarray) -> TestRow:
    n = int(values.size)
    if n < MIN_REPETITIONS:
        return cmp.row(
            "shapiro",
            configuration=configuration,
            n=n,
            reason=f"{n} repetition(s); Shapiro-Wilk needs at least {MIN_REPETITIONS}",
        )
    if _is_constant(values):
        return cmp.row("shapiro", configuration=configuration, n=n, reason="zero variance")

    def run():
        result = _strict(scipy_stats.shapiro, values)
        return result.statistic, result.pvalue, None, None

    return _tested(cmp, "shapiro", n, run, configuration=configuration)


def _levene(cmp: _Comparison, groups: dict[str, np.ndarray]) -> TestRow:
    n, k = sum(v.size for v in groups.values()), len(groups)
    if all(_is_constant(v) for v in groups.values()):
        return cmp.row("levene", n=n, reason="zero variance in every configuration")

    def run():
        result = _strict(scipy_stats.levene, *groups.values(), center="median")
        return result.statistic, result.pvalue, float(k - 1), float(n - k)

    return _tested(cmp, "levene", n, run)


def _welch_anova(cmp: _Comparison, groups: dict[str, np.ndarray], why: str) -> TestRow:
    def run():
        result = _strict(anova_oneway, list(groups.values()), use_var="unequal")
        df1, df2 = (float(x) for x in result.df)
        return result.statistic, result.pvalue, df1, df2

    return _tested(cmp, "welch_anova", sum(v.size for v in groups.values()), run, why)


def _kruskal(cmp: _Comparison, groups: dict[str, np.ndarray], why: str) -> TestRow:
    n = sum(v.size for v in groups.values())
    if _is_constant(np.concatenate(list(groups.values()))):
        return cmp.row("kruskal", n=n, reason=f"{why}; all values are identical")

    def run():
        result = _strict(scipy_stats.kruskal, *groups.values())
        return result.statistic, result.pvalue, float(len(groups) - 1), None

    return _tested(cmp, "kruskal", n, run, why)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the k-th smallest p times (m - k + 1), kept monotone, capped
    at 1. Written out because statsmodels' version runs gc.collect() on every call."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


# Exact Mann-Whitney p-values are cheap up to this many observations per group and tie-free.
_MANNWHITNEY_EXACT_MAX_N = 50


def mannwhitney_holm(groups: dict[str, np.ndarray]) -> pd.DataFrame:
    """Two-sided Mann-Whitney U test of every pair, Holm-adjusted over the pairs.

    Exact p-values when a pair has no ties and at most 50 observations per group (so a pair of
    10 perfectly separated repetitions gets p = 1.1e-5 before adjustment); otherwise the normal
    approximation with tie and continuity corrections. Returns a symmetric matrix of adjusted
    p-values indexed by group name (diagonal 1), like scikit-posthocs' functions.
    """
    names = list(groups)
    pairs = list(itertools.combinations(names, 2))
    raw: list[float] = []
    for a_name, b_name in pairs:
        a, b = groups[a_name], groups[b_name]
        both = np.concatenate([a, b])
        if _is_constant(both):  # one value throughout: no difference to find, and no variance
            raw.append(1.0)
            continue
        exact = (
            np.unique(both).size == both.size and max(a.size, b.size) <= _MANNWHITNEY_EXACT_MAX_N
        )
        result = _strict(
            scipy_stats.mannwhitneyu,
            a,
            b,
            alternative="two-sided",
            method="exact" if exact else "asymptotic",
        )
        raw.append(float(result.pvalue))
    matrix = pd.DataFrame(1.0, index=names, columns=names)
    for (a_name, b_name), p_value in zip(pairs, holm(raw), strict=True):
        matrix.loc[a_name, b_name] = matrix.loc[b_name, a_name] = p_value
    return matrix


def _posthoc_p_values(test: str, groups: dict[str, np.ndarray]) -> pd.DataFrame:
    if test == "mannwhitney_holm":
        return mannwhitney_holm(groups)
    long = pd.DataFrame(
        {
            "value": np.concatenate(list(groups.values())),
            "group": np.repeat(list(groups), [v.size for v in groups.values()]),
        }
    )
    if test == "games_howell":
        return _strict(
            scikit_posthocs.posthoc_games_howell, long, val_col="value", group_col="group"
        )
    return _strict(
        scikit_posthocs.posthoc_dunn,
        long,
        val_col="value",
        group_col="group",
        p_adjust="holm",
    )


def _pairs(
    cmp: _Comparison,
    test: str,
    groups: dict[str, np.ndarray],
    omnibus_rejected: bool,
    gate: bool,
) -> list[PairRow]:
    p_values = _posthoc_p_values(test, groups)
    rows: list[PairRow] = []
    # group_b is the configuration earlier in the paper's order (the baseline TORCH first), so
    # saving_pct reads "group_a saves this much against group_b".
    for b_name, a_name in itertools.combinations(groups, 2):
        a, b = groups[a_name], groups[b_name]
        p_value = float(p_values.loc[a_name, b_name])
        median_a, median_b = float(np.median(a)), float(np.median(b))
        delta = cliffs_delta(a, b)
        significant = None
        if np.isfinite(p_value):
            significant = bool(p_value < cmp.alpha) and (omnibus_rejected or not gate)
        rows.append(
            PairRow(
                model=cmp.model,
                provider_group=cmp.provider_group,
                metric=cmp.metric,
                test=test,
                group_a=a_name,
                group_b=b_name,
                n_a=int(a.size),
                n_b=int(b.size),
                median_a=median_a,
                median_b=median_b,
                mean_diff=float(a.mean() - b.mean()) if test == "games_howell" else None,
                p_value=p_value if np.isfinite(p_value) else None,
                omnibus_rejected=omnibus_rejected,
                significant=significant,
                cliffs_delta=delta,
                magnitude=cliffs_delta_magnitude(delta),
                hedges_g=hedges_g(a, b),
                saving_pct=saving_pct(median_a, median_b),
            )
        )
    return rows


def _choose_path(
    family: TestFamily,
    rank_posthoc: RankPosthoc,
    shapiro_rows: list[TestRow],
    alpha: float,
) -> tuple[str, str, str]:
    """(omnibus test, post-hoc test, why) for one comparison."""
    if family == "parametric":
        return "welch_anova", "games_howell", "test fixed for this variable (the paper's Table 3)"
    if family == "rank":
        return "kruskal", rank_posthoc, "test fixed for this variable (the paper's Table 3)"
    if family != "by_normality":
        raise ValueError(f"unknown test family {family!r}")
    if all(r.decision == FAIL_TO_REJECT for r in shapiro_rows):
        return (
            "welch_anova",
            "games_howell",
            f"all configurations normal (Shapiro-Wilk p >= {alpha})",
        )
    doubtful = [
        f"{r.configuration} ({'p < alpha' if r.decision == REJECT else r.reason})"
        for r in shapiro_rows
        if r.decision != FAIL_TO_REJECT
    ]
    return "kruskal", rank_posthoc, "normality rejected or untestable: " + ", ".join(doubtful)


def compare_configurations(
    model: str,
    provider_group: str,
    metric: str,
    groups: dict[str, np.ndarray],
    alpha: float = 0.05,
    *,
    family: TestFamily = "by_normality",
    rank_posthoc: RankPosthoc = "mannwhitney_holm",
    gate_posthoc: bool = True,
) -> tuple[list[TestRow], list[PairRow]]:
    """Run the whole procedure on one set of configurations (name -> repetitions' values).

    ``family`` chooses the omnibus and post-hoc tests (see the module docstring);
    ``gate_posthoc`` makes a pair significant only when the omnibus test rejected too.
    Configurations with fewer than three repetitions are reported as not testable and left out
    of the comparison; the omnibus row's reason names them.
    """
    cmp = _Comparison(model, provider_group, metric, alpha)
    groups = {name: np.asarray(v, dtype=float) for name, v in groups.items()}
    groups = {name: v[np.isfinite(v)] for name, v in groups.items()}

    shapiro_rows = [_shapiro(cmp, name, values) for name, values in groups.items()]
    too_few = [name for name, v in groups.items() if v.size < MIN_REPETITIONS]
    included = {name: v for name, v in groups.items() if v.size >= MIN_REPETITIONS}
    excluded_note = (
        f"left out (< {MIN_REPETITIONS} repetitions): {', '.join(too_few)}" if too_few else None
    )
    total = sum(v.size for v in included.values())

    if len(included) < 2:
        reason = f"{len(included)} configuration(s) with at least {MIN_REPETITIONS} repetitions"
        if excluded_note:
            reason = f"{reason}; {excluded_note}"
        not_testable = [
            cmp.row("levene", n=total, reason=reason),
            cmp.row("omnibus", n=total, reason=reason),
        ]
        return shapiro_rows + not_testable, []

    levene_row = _levene(cmp, included)
    included_shapiro = [r for r in shapiro_rows if r.configuration in included]
    omnibus_test, posthoc_test, why = _choose_path(family, rank_posthoc, included_shapiro, alpha)
    if omnibus_test == "welch_anova":
        omnibus = _welch_anova(cmp, included, why)
    else:
        omnibus = _kruskal(cmp, included, why)
    if excluded_note:
        omnibus = _with_reason(omnibus, f"{omnibus.reason}; {excluded_note}")

    pairs: list[PairRow] = []
    if omnibus.decision != NOT_TESTABLE:
        try:
            pairs = _pairs(
                cmp, posthoc_test, included, omnibus.decision == REJECT, gate=gate_posthoc
            )
        except _TEST_FAILURES as error:
            omnibus = _with_reason(omnibus, f"{omnibus.reason}; post-hoc failed: {error}")
    return [*shapiro_rows, levene_row, omnibus], pairs


def _with_reason(row: TestRow, reason: str) -> TestRow:
    return TestRow(**{**row.__dict__, "reason": reason})


# ---------------------------------------------------------------------------------------------
# The whole study


def _provider_groups(grouping: ProviderGrouping) -> list[tuple[str, tuple[str, ...]]]:
    if grouping == "by_provider":
        return [(provider, (provider,)) for provider in PROVIDERS]
    if grouping == "all":
        return [("all", PROVIDERS)]
    raise ValueError(f"unknown provider grouping {grouping!r}; use 'by_provider' or 'all'")


def analyse_runs(
    runs: pl.DataFrame,
    *,
    alpha: float = 0.05,
    method: AnalysisMethod = EXTENDED,
    metrics: Sequence[Metric] = METRICS,
) -> StatsResult:
    """All tests for every model, tested metric and configuration group of the runs table.

    ``method`` decides which metrics are tested and how (``AnalysisMethod.tests``), how
    configurations are grouped (``grouping``: ``"by_provider"`` compares CPU configurations among
    themselves and CUDA ones among themselves; ``"all"`` compares all of a model's
    configurations together), the rank post-hoc test and whether post-hoc pairs are gated by
    the omnibus test. A metric is only compared among configurations of the providers it is
    measured on (``Metric.providers``), so GPU metrics are always compared across CUDA
    configurations only.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    # statsmodels' Holm correction (inside posthoc_dunn) calls gc.collect() every time; freezing
    # the objects that exist now keeps each of those collections small instead of walking the
    # whole heap (it was most of the running time of the paper-sized study).
    gc.freeze()
    try:
        return _analyse(runs, alpha, metrics, method)
    finally:
        gc.unfreeze()


def _analyse(
    runs: pl.DataFrame,
    alpha: float,
    metrics: Sequence[Metric],
    method: AnalysisMethod,
) -> StatsResult:
    test_rows: list[TestRow] = []
    pair_rows: list[PairRow] = []
    present = [m for m in metrics if m.column in runs.columns and m.column in method.tests]
    for group_name, providers in _provider_groups(method.grouping):
        for metric in present:
            measured_on = [p for p in providers if p in metric.providers]
            if not measured_on:
                continue
            subset = runs.filter(
                pl.col("provider").is_in(measured_on) & pl.col(metric.column).is_not_null()
            )
            for model in sorted(subset["model"].unique().to_list()):
                of_model = subset.filter(pl.col("model") == model)
                groups = {
                    configuration: of_model.filter(pl.col("configuration") == configuration)[
                        metric.column
                    ].to_numpy()
                    for configuration in order_configurations(of_model["configuration"])
                }
                tests, pairs = compare_configurations(
                    model,
                    group_name,
                    metric.column,
                    groups,
                    alpha,
                    family=method.tests[metric.column],
                    rank_posthoc=method.rank_posthoc,
                    gate_posthoc=method.gate_posthoc,
                )
                test_rows.extend(tests)
                pair_rows.extend(pairs)
    return StatsResult(
        tests=pl.DataFrame([r.__dict__ for r in test_rows], schema=TEST_SCHEMA, orient="row"),
        posthoc=pl.DataFrame([r.__dict__ for r in pair_rows], schema=PAIR_SCHEMA, orient="row"),
    )


# ---------------------------------------------------------------------------------------------
# LaTeX

OMNIBUS_TESTS: tuple[str, ...] = ("welch_anova", "kruskal", "omnibus")
_P_FORMAT = "{:.3g}"


def _with_metric_labels(frame: pl.DataFrame) -> pl.DataFrame:
    labels = {m.column: m.label for m in METRICS}
    return frame.with_columns(
        pl.col("metric").replace(labels).alias("metric_label"),
        pl.col("provider_group").str.to_uppercase().alias("provider_label"),
    )


def write_tests_latex(
    tests: pl.DataFrame,
    path: Path,
    shown: Sequence[str] = ("levene", *OMNIBUS_TESTS),
    caption: str = "Omnibus tests per model, configuration group and metric",
) -> Path:
    """The tests of the ``shown`` kinds (default: Levene and the omnibus test; the per-
    configuration Shapiro-Wilk rows stay in the CSV) as a booktabs ``longtable``."""
    frame = _with_metric_labels(tests.filter(pl.col("test").is_in(list(shown))))
    columns = [
        Column("model", "Model", align="l"),
        Column("provider_label", "Group", align="l"),
        Column("metric_label", "Metric", align="l"),
        Column("test", "Test", align="l"),
        Column("statistic", "Statistic", "{:.3f}"),
        Column("df1", "df1", "{:.3g}"),
        Column("df2", "df2", "{:.3g}"),
        Column("p_value", "p", _P_FORMAT),
        Column("decision", "Decision", align="l"),
    ]
    return write_booktabs(
        frame, path, columns, caption=caption, label="tab:tests", group_by="model", long=True
    )


def write_posthoc_latex(
    posthoc: pl.DataFrame,
    path: Path,
    caption: str = "Post-hoc comparisons with effect sizes and savings",
) -> Path:
    """Every post-hoc pair with its p-value, Cliff's delta and saving as a ``longtable``."""
    frame = _with_metric_labels(posthoc)
    columns = [
        Column("model", "Model", align="l"),
        Column("provider_label", "Group", align="l"),
        Column("metric_label", "Metric", align="l"),
        Column("test", "Test", align="l"),
        Column("group_a", "A", align="l"),
        Column("group_b", "B", align="l"),
        Column("p_value", "p", _P_FORMAT),
        Column("significant", "Sig.", align="c"),
        Column("cliffs_delta", "Cliff's delta", "{:.2f}"),
        Column("magnitude", "Magnitude", align="l"),
        Column("saving_pct", "Saving A vs B [%]", "{:.2f}"),
    ]
    return write_booktabs(
        frame, path, columns, caption=caption, label="tab:posthoc", group_by="model", long=True
    )
