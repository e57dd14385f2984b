"""Heat map of the proxy-task method's relevance and robustness per candidate task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayesproxy.plots._common import PlotInputError

__all__ = ["plot_relevance_heatmap"]

_TASK_COLUMNS: tuple[str, ...] = ("task", "proxy", "candidate")
#: Shown by default when present: the proxy-task method's relevance and robustness.
DEFAULT_COLUMNS: tuple[str, ...] = ("pearson", "spearman", "kendall", "robustness")


def _as_matrix(source: Any, columns: Sequence[str] | None) -> pd.DataFrame:
    table = source.relevance_table() if hasattr(source, "relevance_table") else source
    if not isinstance(table, pd.DataFrame):
        raise PlotInputError(
            f"expected a relevance table (pandas.DataFrame) or a fitted proxy-task method, got "
            f"{type(source).__name__}.\nHint: pass method.relevance_table() or the fitted method."
        )
    frame = table.copy()  # never mutate the caller's frame
    task_col = next((c for c in _TASK_COLUMNS if c in frame.columns), None)
    if task_col is not None:
        frame = frame.set_index(task_col)
    if columns is None and any(c in frame.columns for c in DEFAULT_COLUMNS):
        columns = [c for c in DEFAULT_COLUMNS if c in frame.columns]
    if columns is None:
        numeric = frame.select_dtypes(include=[np.number, "bool"]).columns
        columns = [str(c) for c in numeric]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PlotInputError(
            f"column(s) {missing} are not in the relevance table; it has {list(frame.columns)}."
            "\nHint: pass columns= naming numeric columns of the table."
        )
    if not columns or frame.empty:
        raise PlotInputError(
            "the relevance table has no numeric columns or no rows to draw.\n"
            "Hint: fit the proxy-task method on a table with several candidate tasks first."
        )
    matrix = frame[list(columns)].astype(float)
    matrix.index = [str(i) for i in matrix.index]
    return matrix


def plot_relevance_heatmap(
    relevance: Any,
    *,
    columns: Sequence[str] | None = None,
    sort_by: str | None = None,
    annotate: bool = True,
    title: str | None = None,
) -> Any:
    """Heat map of each candidate task's relevance (Pearson, Spearman, Kendall) and robustness.

    Rows are candidate proxy tasks, columns the table's numeric measures. Correlations share
    one scale from -1 to 1; when a column leaves that range (e.g. a robustness spread) every
    column is rescaled to its own range and the printed numbers carry the values. The
    ``cividis`` map is monotone in lightness, and each cell prints its value, so the figure
    reads in grayscale.

    Parameters
    ----------
    relevance : pandas.DataFrame or fitted proxy-task method
        A frame with one row per task (a ``task`` column or index), or an object with a
        ``relevance_table()`` method.
    columns : sequence of str, optional
        Columns to show; default: ``pearson, spearman, kendall, robustness`` where present,
        else every numeric column.
    sort_by : str, optional
        Sort rows by this column, descending; default: the first column.
    annotate : bool, default True
        Print values in the cells.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> table = pd.DataFrame({"task": ["arc", "mmlu"], "pearson": [0.8, 0.3],
    ...                       "spearman": [0.7, 0.2], "kendall": [0.6, 0.1]})
    >>> fig = plot_relevance_heatmap(table)
    """
    import matplotlib.pyplot as plt

    matrix = _as_matrix(relevance, columns)
    key = sort_by or matrix.columns[0]
    if key not in matrix.columns:
        raise PlotInputError(
            f"sort_by={key!r} is not a shown column.\nHint: choose among {list(matrix.columns)}."
        )
    matrix = matrix.sort_values(key, ascending=False, na_position="last")
    values = matrix.to_numpy()
    finite = values[np.isfinite(values)]
    shared = finite.size == 0 or (finite.min() >= -1 and finite.max() <= 1)
    if shared:
        shown, vmin, vmax = values, -1.0, 1.0
        bar_label = "correlation (-1 to 1)"
    else:
        lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        shown, vmin, vmax = (values - lo) / span, 0.0, 1.0
        bar_label = "position within each column's range (0 = min, 1 = max)"

    n_rows, n_cols = values.shape
    fig, ax = plt.subplots(figsize=(1.3 * n_cols + 3.0, 0.32 * n_rows + 1.8), layout="constrained")
    image = ax.imshow(
        np.ma.masked_invalid(shown), cmap="cividis", vmin=vmin, vmax=vmax, aspect="auto"
    )
    ax.set_xticks(range(n_cols), matrix.columns, rotation=30, ha="right")
    ax.set_yticks(range(n_rows), matrix.index)
    ax.set_xlabel("measure (relevance: correlation of score differences; robustness)")
    ax.set_ylabel("candidate proxy task")
    if annotate:
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                # Light text on dark cells, dark on light: legible in grayscale.
                dark = (shown[i, j] - vmin) / (vmax - vmin) < 0.55
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )
    fig.colorbar(image, ax=ax, label=bar_label, shrink=0.8)
    ax.set_title(title or f"Proxy-task relevance and robustness (sorted by {key})", fontsize=10)
    return fig
