"""Emissions from the runs' energy: a constant or timestamped grid intensity, labelled."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from synthetic import synthetic_runs

from serving_energy.analysis import tables
from serving_energy.analysis.carbon import CarbonError, add_co2e, load_intensity
from serving_energy.analysis.labels import DataLabels
from serving_energy.analysis.method import EXTENDED, PAPER
from serving_energy.study.design import check_config
from serving_energy.study.vocabulary import ConfigError


def runs_at(starts, energy_j=3.6e6, method="estimate"):
    return pl.DataFrame(
        {
            "energy_global_j": [energy_j] * len(starts),
            "energy_global_method": [method] * len(starts),
            "started_at": starts,
        }
    )


def test_a_constant_intensity_turns_a_kwh_into_its_grams():
    intensity = load_intensity({"intensity_g_per_kwh": 250, "source": "a test"})
    out = add_co2e(runs_at(["2026-12-01T10:00:00+00:00"]), intensity)
    assert out["co2e_g"].to_list() == [pytest.approx(250.0)]  # 3.6 MJ = 1 kWh
    assert out["co2e_basis"].to_list() == ["estimate"]
    measured = add_co2e(runs_at(["2026-12-01T10:00:00"], method="rapl"), intensity)
    assert measured["co2e_basis"].to_list() == ["measured"]
    assert "250 gCO2e/kWh (constant; source: a test)" == intensity.describe()


def test_each_run_takes_the_latest_intensity_at_or_before_its_start(tmp_path):
    csv = tmp_path / "grid.csv"
    csv.write_text(
        "timestamp,g_per_kwh\n"
        "2026-12-01T12:00:00+00:00,300\n"
        "2026-12-01T10:00:00+00:00,100\n"  # unsorted on purpose
    )
    intensity = load_intensity({"intensity_g_per_kwh": str(csv), "source": "grid operator"})
    out = add_co2e(
        runs_at(
            [
                "2026-12-01T09:59:00+00:00",  # before the series: no figure, not a guess
                "2026-12-01T10:00:00+00:00",
                "2026-12-01T11:59:59+00:00",
                "2026-12-01T13:00:00+01:00",  # 12:00 UTC
            ]
        ),
        intensity,
    )
    assert out["co2e_intensity_g_per_kwh"].to_list() == [None, 100.0, 100.0, 300.0]
    assert out["co2e_g"].to_list()[1:] == [
        pytest.approx(100),
        pytest.approx(100),
        pytest.approx(300),
    ]
    assert intensity.at(datetime(2026, 12, 1, 11)) == 100.0  # a naive time is read as the series'


def test_carbon_is_off_by_default_and_a_bad_setting_names_its_key(tmp_path):
    runs = runs_at(["2026-12-01T10:00:00"])
    assert add_co2e(runs, load_intensity({"intensity_g_per_kwh": None})).columns == runs.columns
    with pytest.raises(CarbonError, match="carbon.source"):
        load_intensity({"intensity_g_per_kwh": 250})
    bad = tmp_path / "bad.csv"
    bad.write_text("time,value\n2026-12-01,3\n")
    with pytest.raises(CarbonError, match="timestamp,g_per_kwh"):
        load_intensity({"intensity_g_per_kwh": str(bad), "source": "x"})
    bad.write_text("timestamp,g_per_kwh\n2026-12-01T10:00:00,-3\n")
    with pytest.raises(CarbonError, match="line 2"):
        load_intensity({"intensity_g_per_kwh": str(bad), "source": "x"})
    with pytest.raises(ConfigError, match="carbon.source") as error:
        check_config({"carbon": {"intensity_g_per_kwh": 250}})
    with pytest.raises(ConfigError, match="is not a file"):
        check_config({"carbon": {"intensity_g_per_kwh": "missing.csv", "source": "x"}})
    assert "carbon.source" in str(error.value)


@pytest.mark.parametrize("method", [PAPER, EXTENDED], ids=lambda m: m.name)
def test_the_size_category_tables_carry_joules_per_token_and_co2e(method, tmp_path):
    runs = synthetic_runs(n_models=6, n_reps=3).with_columns(
        pl.lit("2026-12-01T10:00:00").alias("started_at"),
        pl.lit("estimate").alias("energy_global_method"),
        pl.lit("estimate").alias("energy_cpu_method"),
    )
    runs = add_co2e(runs, load_intensity({"intensity_g_per_kwh": 400, "source": "x"}))
    table = tables.table4(runs, method)
    assert {"energy_per_token_j", "co2e_g"} <= set(table.columns)
    row = table.row(0, named=True)
    # J/token is the presented energy over the tokens, never rounded to nothing.
    assert 0 < row["energy_per_token_j"] < row["energy_global_j"]
    assert row["co2e_g"] == pytest.approx(row["energy_global_j"] / 3.6e6 * 400, rel=0.02)
    labels = DataLabels.of(runs, method)
    assert "CO2e IS AN ESTIMATE" in labels.note
    csv, tex = tmp_path / "t4.csv", tmp_path / "t4.tex"
    tables.write_size_category_table(table, csv, tex, caption="c", label="l", labels=labels)
    assert "co2e_g" in pl.read_csv(csv).columns
    tabular = tex.read_text().split("\\begin{tabular}", 1)[1]
    assert "co2e" not in tabular and "token" not in tabular  # the paper's columns only
