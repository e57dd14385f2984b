"""Render report content as one self-contained HTML page (inline CSS, embedded PNGs, no JS)."""

from __future__ import annotations

import base64
import html

import pandas as pd

from bayesproxy.report.content import ReportContent

__all__ = ["render_html"]

# Inline and monochrome-friendly; no fonts, scripts or images fetched from anywhere.
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #111; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #333; padding-bottom: 0.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #999; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #e8e8e8; }
td:first-child, th:first-child { text-align: left; }
.banner { padding: 0.8rem 1rem; border: 3px solid #111; margin: 1rem 0; font-weight: 600; }
.banner.bad { background: #ffe1e1; border-style: double; border-width: 6px; }
.banner.good { background: #e6f4e6; }
.warn { border-left: 6px solid #111; background: #f3f3f3; padding: 0.4rem 0.8rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ccc; }
figcaption { font-size: 0.85rem; color: #333; }
.note { color: #444; font-style: italic; }
.meta { color: #444; font-size: 0.85rem; }
"""


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return '<p class="note">Nothing to show.</p>'
    return frame.to_html(index=False, float_format=lambda v: f"{v:.3g}", border=0, na_rep="–")


def render_html(content: ReportContent) -> str:
    """Render ``content`` as a standalone HTML document.

    Parameters
    ----------
    content : ReportContent

    Returns
    -------
    str
        The page; images are base64 ``data:`` URIs, so the file opens offline.

    Examples
    --------
    >>> import arviz_stats  # registers the accessor ArviZ's testing trees use
    >>> from arviz_base import testing
    >>> from bayesproxy.report.content import gather
    >>> page = render_html(gather(testing.datatree(), figures=False))
    >>> page.startswith("<!DOCTYPE html>")
    True
    """
    esc = html.escape
    prob = f"{content.ci_prob:.0%}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(content.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(content.title)}</h1>",
    ]
    if content.provenance:
        meta = "; ".join(f"{esc(k)}: {esc(v)}" for k, v in content.provenance.items())
        parts.append(f'<p class="meta">{meta}</p>')

    if content.converged:
        parts.append(
            '<div class="banner good" id="convergence-verdict">Converged: R-hat, effective '
            "sample sizes and divergences all pass.</div>"
        )
    else:
        reasons = "".join(f"<li>{esc(r)}</li>" for r in content.convergence_reasons)
        parts.append(
            '<div class="banner bad" id="convergence-verdict">NOT CONVERGED: do not trust '
            f"the forecasts below until the sampler is rerun (more tuning, more draws).<ul>"
            f"{reasons}</ul></div>"
        )

    parts += ["<h2>Data summary</h2>", _table(content.data_summary)]

    parts += ["<h2>Convergence</h2>", _table(content.convergence_table)]

    parts += [
        "<h2>Proxy weights</h2>",
        f"<p>Posterior medians and central {prob} intervals, sorted by weight.</p>",
        _table(content.weights),
    ]
    figures = {f.key: f for f in content.figures}
    for key in ("weights", "alignment_stability"):
        parts.append(_figure_html(figures.get(key)))

    parts += [
        "<h2>Forecasts</h2>",
        f"<p>Predicted target score with central {prob} predictive intervals "
        "(<code>lower</code>, <code>upper</code>).</p>",
        _table(content.forecasts),
        _figure_html(figures.get("forecast_fan")),
        "<h2>Extrapolation warnings</h2>",
    ]
    if content.extrapolation_warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in content.extrapolation_warnings)
        parts.append(f'<div class="warn" id="extrapolation"><ul>{items}</ul></div>')
    else:
        parts.append('<p id="extrapolation">No forecast lies outside the training units.</p>')

    parts.append("<h2>Model checks</h2>")
    for key in ("ppc", "loo_pit", "rank"):
        parts.append(_figure_html(figures.get(key)))

    items = "".join(f"<li>{esc(a)}</li>" for a in content.assumptions)
    parts += ["<h2>Assumptions</h2>", f"<ul>{items}</ul>", "</body></html>"]
    return "\n".join(p for p in parts if p)


def _figure_html(figure) -> str:
    if figure is None:
        return ""
    if figure.png is None:
        return f'<p class="note">{html.escape(figure.title)} not available: ' + (
            f"{html.escape(figure.note)}</p>"
        )
    data = base64.b64encode(figure.png).decode("ascii")
    title = html.escape(figure.title)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{title}">'
        f"<figcaption>{title}</figcaption></figure>"
    )
