"""Kobe's own view (datasets/kobe/view.py): court geometry, the shot chart and the court picker."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import catalog
from core.charts import data


@pytest.fixture(scope="module")
def kobe():
    spec = catalog.find("kobe")
    return spec, catalog.load_view(spec)


def test_court_coordinates_match_the_data_convention(kobe) -> None:
    _, view = kobe
    # the hoop is at the origin; 1/100 degree is one foot
    x, y = view.court_xy(np.array([34.0443, 34.0443 - 0.2375]), np.array([-118.2698, -118.2698]))
    assert np.allclose(x, [0, 0]) and np.allclose(y, [0, 23.75])
    lat, lon = view.lat_lon(10.0, 5.0)
    assert np.allclose(view.court_xy(np.array([lat]), np.array([lon])), [[10.0], [5.0]])


def test_shot_chart_groups_by_the_definitions_class_names(kobe) -> None:
    spec, view = kobe
    df = pd.DataFrame({"lat": [34.0, 34.01, 34.02], "lon": [-118.27, -118.26, -118.25],
                       "shot_distance": [5, 10, 15], spec.target.column: [1, 0, 1]})
    fig = view.chart(df, spec)
    names = sorted(t.name for t in fig.data)
    assert names == [f"{spec.target.positive_name.capitalize()} (2)", f"{spec.target.negative_name.capitalize()} (1)"]
    assert len(fig.layout.shapes) >= 8  # the court is drawn
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_a_click_on_the_picker_sets_valid_features(kobe) -> None:
    spec, view = kobe
    fig = view.picker({"lat": 34.0, "lon": -118.27})
    assert len(fig.data) == 2 and fig.layout.clickmode == "event+select"
    values = view.from_click({"x": 3.0, "y": 4.0})
    assert values["shot_distance"] == 5.0  # 3-4-5: feet from the hoop
    row = {**spec.example_row(), **values}
    assert spec.rules.validate_row(row)["shot_distance"] == 5.0


def test_distributions_one_panel_per_feature() -> None:
    a = pd.DataFrame({"f": np.arange(10.0), "g": np.ones(10)})
    fig = data.distributions({"Dev": a, "Prod": a + 1}, ["f", "g"])
    assert len(fig.data) == 4
    assert [t.name for t in fig.data[:2]] == ["Dev", "Prod"]
