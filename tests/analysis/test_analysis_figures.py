"""The figures are written, non-empty, closed, and survive missing data."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
from synthetic import synthetic_runs

from serving_energy import figures
from serving_energy.stats import METRICS_BY_COLUMN

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


def test_gpu_metric_figure_has_only_the_cuda_column(tmp_path, runs, monkeypatch):
    shapes = []
    original = plt.subplots

    def recording_subplots(*args, **kwargs):
        shapes.append(args[:2])
        return original(*args, **kwargs)

    monkeypatch.setattr(figures.plt, "subplots", recording_subplots)
    figures.plot_metric_by_size_and_configuration(
        runs, METRICS_BY_COLUMN["gpu_usage_pct"], tmp_path / "gpu", formats=("png",)
    )
    figures.plot_metric_by_size_and_configuration(
        runs, METRICS_BY_COLUMN["duration_s"], tmp_path / "time", formats=("png",)
    )
    assert shapes == [(3, 1), (3, 2)]  # size categories x providers


def test_paper_figures_skip_metrics_without_data(tmp_path, runs):
    cpu_only = runs.filter(pl.col("provider") == "cpu").drop("gpu_mem_used_pct")
    written = figures.plot_paper_figures(cpu_only, tmp_path, formats=("png",))
    # energy_gpu_j and the GPU metrics are all null on CPU runs: no empty figures for them
    assert_written(
        written,
        [
            "boxplot_energy_global_j.png",
            "boxplot_energy_cpu_j.png",
            "boxplot_duration_s.png",
            "boxplot_cpu_usage_pct.png",
            "boxplot_ram_usage_pct.png",
        ],
    )


def test_per_model_figures(tmp_path, runs):
    written = figures.plot_models(runs, tmp_path, formats=("png",))
    models = sorted(runs["model"].unique())
    assert_written(written, [f"model_{m}.png" for m in models])


def test_model_palette_is_stable_and_distinct():
    palette = figures.model_palette(["b", "a", "c", "a"])
    assert list(palette) == ["a", "b", "c"]
    assert len(set(palette.values())) == 3
    assert len(set(figures.model_palette([f"m{i}" for i in range(30)]).values())) == 30


# --- Timeline ---------------------------------------------------------------------------------


def timeline_frame(with_power: bool = True, with_cpu: bool = True) -> pl.DataFrame:
    schema = {
        "row_type": pl.Utf8,
        "t_s": pl.Float64,
        "meter": pl.Utf8,
        "quantity": pl.Utf8,
        "value": pl.Float64,
        "unit": pl.Utf8,
        "kind": pl.Utf8,
        "phase": pl.Utf8,
        "event": pl.Utf8,
    }
    rows = [("meta", None, None, "interval_s", 0.5, None, None, None, None)]
    for t in np.arange(0.0, 30.0, 0.5):
        busy = 5.0 <= t < 25.0
        if with_power:
            rows.append(
                ("sample", t, "rapl", "cpu_power", 10 + 30 * busy, "W", "gauge", None, None)
            )
        rows.append(
            (
                "sample",
                t,
                "rapl",
                "cpu_energy",
                10 * t + 30 * max(0, t - 5),
                "J",
                "counter",
                None,
                None,
            )
        )
        if with_cpu:
            rows.append(
                ("sample", t, "psutil", "cpu_usage", 5 + 80 * busy, "%", "gauge", None, None)
            )
            rows.append(
                ("sample", t, "psutil", "cpu_usage_core0", 90 * busy, "%", "gauge", None, None)
            )
    for phase, start, end in (
        ("idle-before", 0, 5),
        ("inference", 5, 25),
        ("idle-after", 25, 29.5),
    ):
        rows.append(("marker", start, None, None, None, None, None, phase, "start"))
        rows.append(("marker", end, None, None, None, None, None, phase, "end"))
    return pl.DataFrame(rows, schema=schema, orient="row")


def test_phase_spans_from_markers():
    assert figures.phase_spans(timeline_frame()) == [
        ("idle-before", 0.0, 5.0),
        ("inference", 5.0, 25.0),
        ("idle-after", 25.0, 29.5),
    ]


def test_phase_spans_without_end_markers_or_from_sample_phases():
    frame = timeline_frame().filter(
        ~((pl.col("row_type") == "marker") & (pl.col("event") == "end"))
    )
    assert figures.phase_spans(frame) == [
        ("idle-before", 0.0, 5.0),
        ("inference", 5.0, 25.0),
        ("idle-after", 25.0, 29.5),
    ]
    samples = pl.DataFrame(
        {
            "row_type": ["sample"] * 4,
            "t_s": [0.0, 1.0, 2.0, 3.0],
            "phase": ["idle-before", "idle-before", "inference", "inference"],
        }
    )
    assert figures.phase_spans(samples) == [("idle-before", 0.0, 1.0), ("inference", 2.0, 3.0)]


def test_power_from_energy_counters():
    frame = timeline_frame(with_power=False)
    derived = figures.power_from_energy_counters(frame.filter(pl.col("row_type") == "sample"))
    assert set(derived["unit"]) == {"W"}
    assert derived.filter(pl.col("t_s") == 10.0)["value"].item() == pytest.approx(40.0)
    assert derived.filter(pl.col("t_s") == 2.0)["value"].item() == pytest.approx(10.0)


@pytest.mark.parametrize(("with_power", "with_cpu"), [(True, True), (False, True), (False, False)])
def test_timeline_is_written_even_with_quantities_missing(tmp_path, with_power, with_cpu):
    frame = timeline_frame(with_power, with_cpu)
    written = figures.plot_run_timeline(frame, tmp_path / "run", title="m <ONNX, CPU> rep 0")
    assert_written(written, ["run.png", "run.svg"])


def test_timeline_of_an_empty_frame(tmp_path):
    empty = timeline_frame().clear()
    written = figures.plot_run_timeline(empty, tmp_path / "empty", formats=("png",))
    assert_written(written, ["empty.png"])
