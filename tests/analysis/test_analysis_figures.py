"""The figures are written, non-empty, closed, and survive missing data."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
from synthetic import synthetic_runs

from serving_energy.analysis import figures
from serving_energy.analysis.labels import DataLabels
from serving_energy.analysis.metrics import METRICS_BY_COLUMN
from serving_energy.meters.base import Reading
from serving_energy.meters.timeline import Marker, Timeline

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs() -> pl.DataFrame:
    return synthetic_runs(n_models=3, n_reps=3, seed=2)


def assert_written(paths, expected_names):
    assert sorted(p.name for p in paths) == sorted(expected_names)
    for path in paths:
        assert path.stat().st_size > 1000
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_MAGIC
        if path.suffix == ".svg":
            assert "<svg" in path.read_text()[:2000]
    assert plt.get_fignums() == []  # every figure closed


def test_one_metric_figure_in_png_and_svg(tmp_path, runs):
    stem = tmp_path / "fig" / "energy"
    written = figures.plot_metric_by_size_and_configuration(
        runs, METRICS_BY_COLUMN["energy_global_j"], stem
    )
    assert_written(written, ["energy.png", "energy.svg"])


def recorded_shapes(monkeypatch) -> list[tuple]:
    shapes: list[tuple] = []
    original = plt.subplots

    def recording_subplots(*args, **kwargs):
        shapes.append(args[:2])
        return original(*args, **kwargs)

    monkeypatch.setattr(figures.plt, "subplots", recording_subplots)
    return shapes


def test_gpu_metric_figure_has_only_the_cuda_column(tmp_path, runs, monkeypatch):
    shapes = recorded_shapes(monkeypatch)
    figures.plot_metric_by_size_and_configuration(
        runs, METRICS_BY_COLUMN["gpu_usage_pct"], tmp_path / "gpu", formats=("png",)
    )
    figures.plot_metric_by_size_and_configuration(
        runs, METRICS_BY_COLUMN["duration_s"], tmp_path / "time", formats=("png",)
    )
    assert shapes == [(3, 1), (3, 2)]  # size categories x providers


def test_no_cuda_panels_in_a_study_without_cuda_runs(tmp_path, runs, monkeypatch):
    shapes = recorded_shapes(monkeypatch)
    cpu_only = runs.filter(pl.col("provider") == "cpu")
    written = figures.plot_metric_by_size_and_configuration(
        cpu_only, METRICS_BY_COLUMN["energy_global_j"], tmp_path / "energy", formats=("svg",)
    )
    assert shapes == [(3, 1)]  # the CPU column only
    svg = written[0].read_text()
    assert "CUDA" not in svg and "no runs" not in svg
    assert (
        figures.plot_metric_by_size_and_configuration(
            cpu_only, METRICS_BY_COLUMN["gpu_usage_pct"], tmp_path / "gpu"
        )
        == []
    )


def test_paper_figures_skip_metrics_without_data(tmp_path, runs):
    cpu_only = runs.filter(pl.col("provider") == "cpu").drop("gpu_mem_used_pct")
    written = figures.plot_study_figures(cpu_only, tmp_path, formats=("png",))
    # energy_gpu_j and the GPU metrics are all null on CPU runs: no empty figures for them
    assert_written(
        [path for path in written if path.name.startswith("boxplot_")],
        [
            "boxplot_energy_global_j.png",
            "boxplot_energy_cpu_j.png",
            "boxplot_duration_s.png",
            "boxplot_cpu_usage_pct.png",
            "boxplot_ram_usage_pct.png",
        ],
    )


def test_figures_carry_the_labels_in_svg_text_and_png_metadata(tmp_path, runs):
    from PIL import Image

    labels = DataLabels(
        method="paper",
        estimated=("energy_cpu_method",),
        estimated_runs=4,
        n_runs=4,
        standin_models=("model-000",),
    )
    written = figures.plot_study_figures(
        runs.filter(pl.col("model") == "model-000"),
        tmp_path,
        metrics=[METRICS_BY_COLUMN["energy_global_j"]],
        labels=labels,
    )
    # The box plot, the model's figure and its time-energy figures (model, size category), as
    # PNG and SVG.
    assert len(written) == 8
    for path in written:
        if path.suffix == ".svg":
            text = path.read_text()
        else:
            text = Image.open(path).info["Description"]
        assert "analysis method: paper" in text, path
        assert "ESTIMATE" in text and "STAND-IN" in text, path


def test_invalid_runs_kept_are_drawn_as_crosses(tmp_path, runs, monkeypatch):
    marked = runs.with_columns((pl.col("rep") != 0).alias("valid"))
    markers = []
    original = figures.Axes.scatter

    def recording_scatter(self, *args, **kwargs):
        markers.append((kwargs.get("marker"), len(args[0])))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(figures.Axes, "scatter", recording_scatter)
    figures.plot_metric_by_size_and_configuration(
        marked, METRICS_BY_COLUMN["duration_s"], tmp_path / "t", formats=("png",)
    )
    crosses = sum(n for marker, n in markers if marker == "x")
    assert crosses == marked.filter(~pl.col("valid")).height


def test_per_model_figures(tmp_path, runs):
    written = figures.plot_study_figures(runs, tmp_path, formats=("png",))
    models = sorted(runs["model"].unique())
    assert_written(
        [path for path in written if path.name.startswith("model_")],
        [f"model_{m}.png" for m in models],
    )


def test_model_palette_is_stable_and_distinct():
    palette = figures.model_palette(["b", "a", "c", "a"])
    assert list(palette) == ["a", "b", "c"]
    assert len(set(palette.values())) == 3
    assert len(set(figures.model_palette([f"m{i}" for i in range(30)]).values())) == 30


# --- Timeline ---------------------------------------------------------------------------------


def reading(t, meter, quantity, value, unit, kind="gauge", method="sampled", sensor=None, top=None):
    return Reading(t, meter, quantity, value, unit, kind, method, sensor or quantity, top)


def timeline(
    with_power: bool = True, with_cpu: bool = True, wrap_at: float | None = None
) -> Timeline:
    """A run of 30 s: idle 0-5 s at 10 W, inference 5-25 s at 40 W, idle 25-29.5 s.

    ``wrap_at``: the RAPL counter's range; the counter wraps back to zero when it reaches it.
    """
    samples = []
    for t in np.arange(0.0, 30.0, 0.5):
        busy = 5.0 <= t < 25.0
        if with_power:
            samples.append(reading(t, "rapl", "cpu_power", 10 + 30 * busy, "W"))
        energy = 10 * t + 30 * min(max(0.0, t - 5), 20)
        if wrap_at:
            energy %= wrap_at
        samples.append(
            reading(
                t, "rapl", "cpu_energy", energy, "J", "counter", "counter", "package-0", wrap_at
            )
        )
        if with_cpu:
            samples.append(reading(t, "system", "cpu_usage", 5 + 80 * busy, "%"))
            samples.append(reading(t, "system", "cpu_usage_core0", 90 * busy, "%"))
    markers = []
    for phase, start, end in (
        ("idle-before", 0, 5),
        ("load", 5, 5.2),
        ("warm-up", 5.2, 5.3),
        ("inference", 5.3, 25),
        ("idle-after", 25, 29.5),
    ):
        markers += [Marker(start, phase, "start"), Marker(end, phase, "end")]
    return Timeline(tuple(samples), tuple(markers))


def test_phase_spans_are_the_bounds_the_metrics_use():
    run = timeline()
    spans = figures.phase_spans(run)
    assert [s[0] for s in spans] == ["idle-before", "load", "warm-up", "inference", "idle-after"]
    for phase, start, end in spans:
        assert (start, end) == run.phase_bounds(phase)


def test_a_phase_without_its_end_marker_is_drawn_to_the_last_reading():
    run = timeline()
    cut = Timeline(
        run.samples, tuple(m for m in run.markers if (m.phase, m.event) != ("idle-after", "end"))
    )
    assert figures.phase_spans(cut)[-1] == ("idle-after" + figures.INCOMPLETE, 25.0, 29.5)


def test_power_from_energy_counters():
    derived = figures.power_from_energy_counters(timeline(with_power=False).samples)
    assert {r.unit for r in derived} == {"W"}
    power = {r.t_s: r.value for r in derived}
    assert power[10.0] == pytest.approx(40.0)
    assert power[2.0] == pytest.approx(10.0)


def test_power_from_a_wrapping_counter_is_unwrapped_as_the_metrics_do():
    derived = figures.power_from_energy_counters(timeline(with_power=False, wrap_at=250.0).samples)
    power = [r.value for r in derived]
    assert min(power) == pytest.approx(10.0) and max(power) == pytest.approx(40.0)


def test_timeline_phase_names_are_a_legend_not_overlapping_text(tmp_path, monkeypatch):
    texts = []
    original = figures.Axes.text

    def recording_text(self, *args, **kwargs):
        texts.append(args[2])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(figures.Axes, "text", recording_text)
    written = figures.plot_run_timeline(timeline(), tmp_path / "run", formats=("svg",))
    assert texts == []  # no phase name is placed on the axes, where short phases collide
    svg = written[0].read_text()
    for phase in ("idle-before", "load", "warm-up", "inference", "idle-after"):
        assert svg.count(f">{phase}<") == 1, phase


def test_timeline_footer_says_estimate_and_stand_in(tmp_path):
    from PIL import Image

    run = timeline()
    estimated = Timeline(
        tuple(
            reading(r.t_s, "cpu_estimate", "cpu_power", r.value, "W", method="estimate")
            if r.quantity == "cpu_power"
            else r
            for r in run.samples
        ),
        run.markers,
    )
    written = figures.plot_run_timeline(estimated, tmp_path / "run", note="STAND-IN model")
    description = Image.open(tmp_path / "run.png").info["Description"]
    assert "STAND-IN model" in description and "ESTIMATE" in description
    assert "ESTIMATE, not measured: cpu_estimate: cpu_power" in written[1].read_text()


@pytest.mark.parametrize(("with_power", "with_cpu"), [(True, True), (False, True), (False, False)])
def test_timeline_is_written_even_with_quantities_missing(tmp_path, with_power, with_cpu):
    written = figures.plot_run_timeline(
        timeline(with_power, with_cpu), tmp_path / "run", title="m <ONNX, CPU> rep 0"
    )
    assert_written(written, ["run.png", "run.svg"])


def test_timeline_of_an_empty_run(tmp_path):
    written = figures.plot_run_timeline(Timeline(()), tmp_path / "empty", formats=("png",))
    assert_written(written, ["empty.png"])


def test_timeline_round_trips_through_parquet(tmp_path):
    path = timeline().to_parquet(tmp_path / "timeline.parquet")
    written = figures.plot_run_timeline(
        Timeline.from_parquet(path), tmp_path / "run", formats=("png",)
    )
    assert_written(written, ["run.png"])
