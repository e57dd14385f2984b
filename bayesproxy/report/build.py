"""Write a report file: pick the format, render, and replace the target atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from bayesproxy.plots._common import PlotInputError
from bayesproxy.report.content import gather
from bayesproxy.report.html import render_html
from bayesproxy.report.markdown import render_markdown

__all__ = ["build_report"]

_FORMATS = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown"}


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, then rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_report(
    forecaster: Any,
    *,
    path: str | os.PathLike[str],
    table: Any = None,
    format: Literal["html", "markdown"] | None = None,
    ci_prob: float = 0.9,
    title: str | None = None,
) -> Path:
    """Write a shareable report on a fit: data, convergence, weights, forecasts, checks.

    The report holds a data summary, the convergence verdict (a loud banner when the run
    did not converge), the proxy weight table and plots, the forecast table with
    ``ci_prob`` intervals and the fan chart, extrapolation warnings, the posterior
    predictive and LOO-PIT checks, and the model's assumptions. HTML is one
    self-contained file (images embedded as base64, inline CSS, no scripts, no external
    URLs), so it opens offline. Markdown writes its figures as PNGs into a folder
    ``<name>_files/`` beside the ``.md`` file.

    Parameters
    ----------
    forecaster : ProxyForecaster or xarray.DataTree
        A fitted forecaster (full report) or a fit's DataTree (forecasts read from the
        posterior of ``target_p``).
    path : path-like
        Where to write; its folder must exist.
    table : BenchmarkTable, optional
        The table the fit was made on: adds its summary and the observed target scores
        to the fan chart.
    format : {"html", "markdown"}, optional
        Default: from the suffix of ``path`` (``.html``/``.htm`` or ``.md``/``.markdown``).
    ci_prob : float, default 0.9
        Probability of every interval in the report.
    title : str, optional

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    PlotInputError
        For an unknown format or suffix, a missing folder, or an unfitted forecaster.

    Examples
    --------
    >>> import arviz_stats  # registers the accessor ArviZ's testing trees use
    >>> from arviz_base import testing
    >>> build_report(testing.datatree(), path="report.html")  # doctest: +SKIP
    PosixPath('report.html')
    """
    path = Path(path)
    if format is None:
        format = _FORMATS.get(path.suffix.lower())
        if format is None:
            raise PlotInputError(
                f"cannot tell the report format from {path.name!r}.\n"
                "Hint: end the path in .html or .md, or pass format='html' / 'markdown'."
            )
    if format not in ("html", "markdown"):
        raise PlotInputError(
            f"format={format!r} is not a report format.\nHint: pass 'html' or 'markdown'."
        )
    if not path.parent.is_dir():
        raise PlotInputError(
            f"the folder {str(path.parent)!r} does not exist.\n"
            "Hint: create it first, or write the report elsewhere."
        )
    content = gather(forecaster, table=table, ci_prob=ci_prob, title=title)
    if format == "html":
        _atomic_write(path, render_html(content).encode("utf-8"))
        return path
    image_dir = path.parent / f"{path.stem}_files"
    image_dir.mkdir(exist_ok=True)
    for figure in content.figures:
        if figure.png is not None:
            _atomic_write(image_dir / f"{figure.key}.png", figure.png)
    _atomic_write(path, render_markdown(content, image_dir=image_dir.name).encode("utf-8"))
    return path
