"""Every figure is readable at its saved size: no text leaves the image, no label covers ticks."""

from __future__ import annotations

import matplotlib.figure
import polars as pl
import pytest
from figure_checks import layout_problems
from synthetic import synthetic_runs

from serving_energy.analysis import figures


@pytest.fixture
def drawn(monkeypatch):
    """The figures as they are saved (checked before they are closed)."""
    problems: list[str] = []
    saved = matplotlib.figure.Figure.savefig

    def checking_savefig(self, path, *args, **kwargs):
        if str(path).endswith(".png"):
            problems.extend(layout_problems(self, str(path).rsplit("/", 1)[-1]))
        return saved(self, path, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", checking_savefig)
    return problems


def with_roofline(runs: pl.DataFrame) -> pl.DataFrame:
    return runs.with_columns(
        (0.3 + 0.1 * pl.col("rep") / 10).alias("roofline_fraction"),
        (pl.col("energy_global_j") / pl.col("new_tokens")).alias("energy_per_token_j"),
    )


@pytest.mark.parametrize("providers", [["cpu"], ["cpu", "cuda"]], ids=["cpu-only", "cpu-and-cuda"])
def test_every_study_figure_keeps_its_text_inside_and_apart(tmp_path, drawn, providers):
    """The CPU-only study is the case whose roofline figure was broken: a title wider than the
    one-column figure, a y label longer than its axis."""
    runs = with_roofline(synthetic_runs(n_models=6, n_reps=3))
    runs = runs.filter(pl.col("provider").is_in(providers))
    written = figures.plot_study_figures(runs, tmp_path, formats=("png",))
    names = {path.name for path in written}
    assert {"roofline_fraction.png", "energy_per_token_j.png"} <= names
    assert {"time_energy_model-000.png", "time_energy_category_1.png"} <= names
    assert drawn == [], "\n".join(drawn)


def test_the_check_finds_text_that_leaves_the_image():
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(3, 2))
    figure.suptitle("a title far too long for a figure three inches wide, as the roofline's was")
    ax.set_ylabel("a y label longer than the axis it labels, running over the ticks below")
    problems = layout_problems(figure)
    plt.close(figure)
    assert any("leaves the image" in p for p in problems)


def test_a_run_timeline_keeps_its_text_inside_and_apart(tmp_path, drawn):
    """Every smoke run also writes a timeline: the longest title the workflow gives one (model,
    configuration label, repetition), the stand-in note and the estimate footer."""
    from test_analysis_figures import timeline

    title = "tiny-gpt2-bigcode-standin <OV, CPU> rep 2"
    written = figures.plot_run_timeline(
        timeline(), tmp_path / "run", title=title, formats=("png",), note="STAND-IN model"
    )
    assert [path.name for path in written] == ["run.png"]
    assert drawn == [], "\n".join(drawn)
