"""The backtest comparison figure: one metric, every method, per split."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bayesproxy.backtest.errors import BacktestError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from bayesproxy.backtest.harness import BacktestResult

__all__ = ["plot_backtest_comparison"]

# grayscale-friendly: distinct hatches and gray levels, not just hue
_GRAYS = ("0.15", "0.45", "0.7", "0.9")
_HATCHES = ("", "//", "..", "xx", "\\\\", "--")
_LOWER_IS_BETTER = {"mae", "rmse", "crps", "fit_seconds"}


def plot_backtest_comparison(
    result: BacktestResult,
    *,
    metric: str = "mae",
    ax: Axes | None = None,
) -> Axes:
    """Draw a grouped bar chart of one metric: a group per split, a bar per method.

    Bars show the fold-weighted mean (as in :meth:`BacktestResult.summary`); open dots show
    the individual folds when a split has several, so a few bad folds are visible. A metric
    a method cannot report (e.g. coverage without predictive samples) is marked "n/a".

    Parameters
    ----------
    result : BacktestResult
        The output of :func:`bayesproxy.backtest.backtest`.
    metric : str, default "mae"
        A metric present in ``result.results`` (e.g. ``"rmse"``, ``"crps"``,
        ``"coverage_90"``, ``"spearman"``).
    ax : matplotlib Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> ax = plot_backtest_comparison(result, metric="crps")  # doctest: +SKIP
    >>> ax.figure.savefig("comparison.png")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    scores = result.results
    known = sorted(set(scores["metric"]) - {"error", "warning"})
    if metric not in known:
        raise BacktestError(
            f"metric {metric!r} is not in the backtest results.", hint=f"choose among {known}."
        )
    summary = result.summary()
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 1.6 * summary["split"].nunique() + 3), 4.0))
    methods = list(dict.fromkeys(summary["method"]))
    splits = list(dict.fromkeys(summary["split"]))
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(splits))
    rows = scores[scores["metric"] == metric]
    for k, method in enumerate(methods):
        values = [
            summary.loc[(summary["method"] == method) & (summary["split"] == s), metric]
            for s in splits
        ]
        heights = [float(v.iloc[0]) if len(v) else np.nan for v in values]
        offset = x - 0.4 + width * (k + 0.5)
        ax.bar(
            offset,
            np.nan_to_num(heights, nan=0.0),
            width=width * 0.95,
            label=method,
            color=_GRAYS[k % len(_GRAYS)],
            hatch=_HATCHES[k % len(_HATCHES)],
            edgecolor="black",
            linewidth=0.6,
        )
        for i, split in enumerate(splits):
            folds = rows[(rows["method"] == method) & (rows["split"] == split)]["value"]
            folds = folds[np.isfinite(folds)]
            if len(folds) > 1:
                ax.plot(
                    np.full(len(folds), offset[i]),
                    folds,
                    "o",
                    ms=3,
                    mfc="white",
                    mec="black",
                    mew=0.6,
                    label="_folds",
                )
            if not np.isfinite(heights[i]):  # say so rather than draw a zero bar
                ax.text(offset[i], 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    if metric.startswith("coverage_"):
        nominal = int(metric.split("_")[1]) / 100
        ax.axhline(nominal, color="black", linestyle=":", linewidth=1, label="nominal")
    ax.set_xticks(x, splits)
    direction = " (lower is better)" if metric in _LOWER_IS_BETTER else ""
    if metric in {"spearman", "kendall", "pairwise_accuracy", "elpd"}:
        direction = " (higher is better)"
    ax.set_ylabel(f"{metric}{direction}")
    ax.set_xlabel("split")
    ax.set_title(f"Backtest of {result.target!r}: {metric} by method")
    # outside the axes: the legend never hides a bar
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    return ax
