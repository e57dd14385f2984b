"""Render report content as Markdown, with the figures written as PNGs in a folder beside it.

Many Markdown viewers (GitHub among them) refuse ``data:`` image URIs, so the images are
files: ``report.md`` refers to ``report_files/<figure>.png``.
"""

from __future__ import annotations

import pandas as pd

from bayesproxy.report.content import ReportContent

__all__ = ["render_markdown"]


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_Nothing to show._"
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: "–" if pd.isna(v) else f"{v:.3g}")
    header = "| " + " | ".join(str(c) for c in shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    rows = [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
        for row in shown.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


def render_markdown(content: ReportContent, *, image_dir: str) -> str:
    """Render ``content`` as Markdown referring to figures in ``image_dir``.

    Parameters
    ----------
    content : ReportContent
    image_dir : str
        Folder (relative to the Markdown file) where ``<figure key>.png`` files are written.

    Returns
    -------
    str

    Examples
    --------
    >>> import arviz_stats  # registers the accessor ArviZ's testing trees use
    >>> from arviz_base import testing
    >>> from bayesproxy.report.content import gather
    >>> text = render_markdown(gather(testing.datatree(), figures=False), image_dir="r_files")
    >>> text.splitlines()[0].startswith("# bayesproxy report")
    True
    """
    prob = f"{content.ci_prob:.0%}"
    figures = {f.key: f for f in content.figures}

    def figure(key: str) -> str:
        fig = figures.get(key)
        if fig is None:
            return ""
        if fig.png is None:
            return f"_{fig.title} not available: {fig.note}_"
        return f"![{fig.title}]({image_dir}/{key}.png)"

    lines = [f"# {content.title}", ""]
    if content.provenance:
        lines += ["; ".join(f"{k}: {v}" for k, v in content.provenance.items()), ""]
    if content.converged:
        lines += ["> **Converged**: R-hat, effective sample sizes and divergences all pass.", ""]
    else:
        lines += [
            "> **⚠ NOT CONVERGED**: do not trust the forecasts below until the sampler is "
            "rerun (more tuning, more draws).",
            *[f"> - {r}" for r in content.convergence_reasons],
            "",
        ]
    lines += ["## Data summary", "", _table(content.data_summary), ""]
    lines += ["## Convergence", "", _table(content.convergence_table), ""]
    lines += [
        "## Proxy weights",
        "",
        f"Posterior medians and central {prob} intervals, sorted by weight.",
        "",
        _table(content.weights),
        "",
        figure("weights"),
        "",
        figure("alignment_stability"),
        "",
        "## Forecasts",
        "",
        f"Predicted target score with central {prob} predictive intervals (`lower`, `upper`).",
        "",
        _table(content.forecasts),
        "",
        figure("forecast_fan"),
        "",
        "## Extrapolation warnings",
        "",
    ]
    if content.extrapolation_warnings:
        lines += [f"- ⚠ {w}" for w in content.extrapolation_warnings]
    else:
        lines.append("No forecast lies outside the training units.")
    lines += ["", "## Model checks", ""]
    for key in ("ppc", "loo_pit", "rank"):
        lines += [figure(key), ""]
    lines += ["## Assumptions", "", *[f"- {a}" for a in content.assumptions], ""]
    return "\n".join(lines)
