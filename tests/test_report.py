"""The report: content, HTML and Markdown writers, atomic writes and input errors."""

from __future__ import annotations

import base64
import re

import matplotlib

matplotlib.use("Agg")

import arviz_stats  # noqa: F401  (registers the .azstats accessor testing.datatree uses)
import numpy as np
import pytest
from arviz_base import testing
from test_plots import make_proxy_datatree

from bayesproxy.plots import PlotInputError
from bayesproxy.report import build_report, convergence_verdict, gather


@pytest.fixture(scope="module")
def proxy_dt():
    return make_proxy_datatree()


@pytest.fixture(scope="module")
def html_report(proxy_dt, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    return build_report(proxy_dt, path=path, ci_prob=0.8)


def test_convergence_verdict_flags_bad_runs():
    # ArviZ's testing tree has 10% divergent transitions: the verdict must say so.
    ok, reasons, table = convergence_verdict(testing.datatree())
    assert not ok
    assert any("divergent" in r for r in reasons)
    assert set(table["variable"]) == {"mu", "theta", "tau"}


def test_convergence_verdict_flags_stuck_chain(proxy_dt):
    stuck = proxy_dt.copy()
    post = stuck["posterior"].to_dataset()
    post["alignment"] = post["alignment"].copy()
    post["alignment"].values[1] += 3.0  # chain 2 sits elsewhere
    stuck["posterior"] = post
    ok, reasons, table = convergence_verdict(stuck)
    assert not ok and any("R-hat" in r and "alignment" in r for r in reasons)
    assert table.set_index("variable").loc["alignment", "max_rhat"] > 1.5


def test_html_is_self_contained(html_report):
    page = html_report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    # no external resources: every src/href is a data URI
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert ref.startswith("data:"), ref
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 6
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for section in (
        "Data summary",
        "Convergence",
        "Proxy weights",
        "Forecasts",
        "Extrapolation warnings",
        "Assumptions",
    ):
        assert f"<h2>{section}</h2>" in page
    assert "80% intervals" in page
    # the synthetic tree's two flagged units appear as warnings
    assert "r1@16000: outside the training units" in page
    assert "r2@16000: outside the training units" in page


def test_html_banner_reflects_convergence(tmp_path):
    page = build_report(testing.datatree(), path=tmp_path / "r.html").read_text()
    assert 'class="banner bad"' in page and "NOT CONVERGED" in page
    assert "divergent transitions" in page
    # figures that need bayesproxy variables are reported missing, not crashed on
    assert "Proxy weights not available" in page


def test_forecast_table_numbers(proxy_dt):
    content = gather(proxy_dt, ci_prob=0.5, figures=False)
    draws = proxy_dt.posterior["target_p"].values.reshape(-1, proxy_dt.posterior.sizes["unit"])
    np.testing.assert_allclose(content.forecasts["median"], np.median(draws, axis=0))
    np.testing.assert_allclose(content.forecasts["lower"], np.quantile(draws, 0.25, axis=0))
    weights = content.weights.set_index("proxy")
    expected = proxy_dt.posterior["weight"].median(["chain", "draw"]).to_series()
    np.testing.assert_allclose(weights.loc[expected.index, "weight median"], expected)
    assert list(content.weights["weight median"]) == sorted(
        content.weights["weight median"], reverse=True
    )


def test_markdown_writes_images_beside(proxy_dt, tmp_path):
    path = build_report(proxy_dt, path=tmp_path / "fit.md")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# bayesproxy report")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 6
    for link in links:
        assert link.startswith("fit_files/")
        assert (tmp_path / link).read_bytes()[:4] == b"\x89PNG"
    assert "## Assumptions" in text and "| proxy |" in text
    # nothing half-written is left behind
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_bad_inputs(proxy_dt, tmp_path):
    with pytest.raises(PlotInputError, match=r"\.html or \.md"):
        build_report(proxy_dt, path=tmp_path / "report.pdf")
    with pytest.raises(PlotInputError, match="does not exist"):
        build_report(proxy_dt, path=tmp_path / "missing" / "r.html")
    with pytest.raises(PlotInputError, match="format="):
        build_report(proxy_dt, path=tmp_path / "r.html", format="pdf")
    with pytest.raises(PlotInputError, match="fitted forecaster"):
        build_report({"not": "a fit"}, path=tmp_path / "r.html")
    assert not list(tmp_path.iterdir())
