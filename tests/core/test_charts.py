"""Figures of the data: court geometry and chart contents."""
from __future__ import annotations

import numpy as np
import pandas as pd

from core import charts


def test_court_coordinates_match_the_data_convention() -> None:
    # the hoop is at the origin; 1/100 degree is one foot
    x, y = charts.court_xy(np.array([34.0443, 34.0443 - 0.2375]), np.array([-118.2698, -118.2698]))
    assert np.allclose(x, [0, 0]) and np.allclose(y, [0, 23.75])
    lat, lon = charts.lat_lon(10.0, 5.0)
    assert np.allclose(charts.court_xy(np.array([lat]), np.array([lon])), [[10.0], [5.0]])


def test_shot_chart_groups_made_and_missed() -> None:
    df = pd.DataFrame({"lat": [34.0, 34.01, 34.02], "lon": [-118.27, -118.26, -118.25],
                       "shot_distance": [5, 10, 15], "shot_made_flag": [1, 0, 1]})
    fig = charts.shot_chart(df)
    names = sorted(t.name for t in fig.data)
    assert names == ["Made (2)", "Missed (1)"]
    assert len(fig.layout.shapes) >= 8  # the court is drawn
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_distributions_one_panel_per_feature() -> None:
    a = pd.DataFrame({"f": np.arange(10.0), "g": np.ones(10)})
    fig = charts.distributions({"Dev": a, "Prod": a + 1}, ["f", "g"])
    assert len(fig.data) == 4
    assert [t.name for t in fig.data[:2]] == ["Dev", "Prod"]
