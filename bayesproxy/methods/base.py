"""The forecaster interface, the forecast frame, and the registry of methods by short name.

Every forecaster (the Bayesian ``ProxyForecaster``, the source methods of the proxy-task
papers and the peer baselines) follows :class:`Forecaster`, so the backtest harness can fit
and compare them without knowing which is which. Importing this module does not import PyMC:
``"proxy-bayes"`` is resolved from :mod:`bayesproxy.model` only when asked for.

Examples
--------
>>> from bayesproxy.methods.base import available_methods, get_method
>>> "compute-sigmoid" in available_methods()
True
>>> get_method("compute-sigmoid", target="gsm8k").name
'compute-sigmoid'
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from bayesproxy.errors import BayesproxyError
from bayesproxy.threads import for_row_blocks

if TYPE_CHECKING:
    import xarray as xr

    from bayesproxy.table import BenchmarkTable

__all__ = [
    "FORECAST_COLUMNS",
    "Forecaster",
    "MethodInputError",
    "NotFittedError",
    "UnknownMethodError",
    "available_methods",
    "get_method",
    "get_method_class",
    "make_forecast_frame",
    "range_distance",
]

#: Draws from which :func:`_row_quantiles` takes the compiled pass (smaller arrays do not
#: repay importing numba).
_COMPILED_QUANTILES = 1 << 16

#: The columns of every forecast frame, in order (see ARCHITECTURE.md).
FORECAST_COLUMNS: tuple[str, ...] = (
    "unit",
    "model",
    "step",
    "mean",
    "median",
    "lower",
    "upper",
    "p_above",
    "distance",
    "extrapolation",
)


class MethodInputError(BayesproxyError, ValueError):
    """A table a forecaster cannot use as given (missing compute, no loss-like task, ...)."""

    def __init__(self, message: str, *, hint: str) -> None:
        self.hint = hint
        super().__init__(f"{message}\nHint: {hint}")


class NotFittedError(BayesproxyError, RuntimeError):
    """A forecaster asked to forecast before :meth:`Forecaster.fit` was called."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"the {name!r} forecaster has not been fitted yet.\n"
            "Hint: call .fit(table) first, or pass a fitted forecaster."
        )


class UnknownMethodError(BayesproxyError, KeyError):
    """A method name that is not in the registry."""

    def __init__(self, name: str, available: Sequence[str]) -> None:
        self.name = name
        self.available = list(available)
        close = difflib.get_close_matches(name, self.available, n=2, cutoff=0.5)
        hint = (
            f"did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else f"choose one of {self.available}."
        )
        super().__init__(f"unknown forecasting method {name!r}.\nHint: {hint}")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


@runtime_checkable
class Forecaster(Protocol):
    """What every forecaster offers: fit on a table, forecast its (or another table's) units.

    Attributes
    ----------
    name : str
        Short method name, e.g. ``"proxy-bayes"`` or ``"compute-sigmoid"``.
    target : str
        The task being forecast.

    Notes
    -----
    ``forecast()`` with ``table=None`` forecasts the fitted table's units whose target is
    missing; with a table, every unit of that table (its target values, if any, are ignored).
    The frame has the columns :data:`FORECAST_COLUMNS`; ``lower``/``upper``/``p_above`` are
    NaN for a method with no honest uncertainty, whose ``predictive_samples`` returns None.

    Examples
    --------
    >>> from bayesproxy.methods import get_method
    >>> isinstance(get_method("mean-proxy-sigmoid", target="t"), Forecaster)
    True
    """

    name: str
    target: str

    def fit(self, table: BenchmarkTable, **kwargs: Any) -> Self:
        """Fit on the units of ``table`` whose target is observed."""
        ...

    def forecast(
        self,
        table: BenchmarkTable | None = None,
        *,
        prob: float = 0.9,
        threshold: float | None = None,
    ) -> pd.DataFrame:
        """One row per unit with the columns :data:`FORECAST_COLUMNS`."""
        ...

    def predictive_samples(
        self,
        table: BenchmarkTable | None = None,
        *,
        n_samples: int = 1000,
        random_seed: int | None = None,
    ) -> xr.DataArray | None:
        """Predictive draws of the target, dims ``(unit, sample)``; None without uncertainty."""
        ...


def range_distance(x: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of points from the range of training points, in training standard deviations.

    Per feature, a point inside ``[min, max]`` of the training values is at distance 0; a
    point outside is at ``(x - max) / sd`` or ``(min - x) / sd``. Features combine by the
    Euclidean norm. This is the ``distance`` column of every forecast frame of the methods in
    :mod:`bayesproxy.methods`; ``extrapolation`` is ``distance > 0``.

    Parameters
    ----------
    x : ndarray, shape (n,) or (n, d)
        Points to place (the input of the method's link, e.g. log FLOPs or an aggregate).
    train : ndarray, shape (m,) or (m, d)
        The same features on the training units.

    Returns
    -------
    distance : ndarray, shape (n,)
        NaN where a feature of the point is NaN.
    outside : ndarray of bool, shape (n,)
        Whether the point lies outside the training range on some feature.

    Examples
    --------
    >>> d, out = range_distance(np.array([0.5, 3.0]), np.array([0.0, 1.0, 2.0]))
    >>> d.round(3).tolist(), out.tolist()
    ([0.0, 1.0], [False, True])
    """
    x2 = np.asarray(x, dtype=float)
    t2 = np.asarray(train, dtype=float)
    x2 = x2.reshape(len(x2), -1)
    t2 = t2.reshape(len(t2), -1)
    lo = np.nanmin(t2, axis=0)
    hi = np.nanmax(t2, axis=0)
    sd = np.nanstd(t2, axis=0, ddof=1) if len(t2) > 1 else np.ones(t2.shape[1])
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)  # a constant feature: raw units
    below = np.clip(lo - x2, 0.0, None) / sd
    above = np.clip(x2 - hi, 0.0, None) / sd
    per_feature = below + above  # at most one of the two is non-zero
    distance = np.sqrt(np.sum(per_feature**2, axis=1))
    distance[np.any(np.isnan(x2), axis=1)] = np.nan
    return distance, distance > 0


def _row_quantiles(
    samples: np.ndarray, probs: Sequence[float], usable: np.ndarray
) -> list[np.ndarray]:
    """Quantiles of each row of ``samples`` (N, S), ignoring NaN, one array per prob.

    Rows without NaN (usually all) take one vectorised :func:`numpy.quantile` (a single
    partition per row), or for large arrays the compiled
    :func:`~bayesproxy.methods.quantile_loops.row_quantiles` (the same values, about twice
    as fast); :func:`numpy.nanquantile` loops over rows in Python, some 10 times slower on
    10,000 x 1,000 draws. A unit with no usable input (e.g. none of its proxies
    evaluated) has all-NaN draws: its quantiles are NaN, not a warning.
    """
    out = np.full((len(probs), samples.shape[0]), np.nan)
    full = usable.all(axis=1) & (samples.shape[1] > 0)
    todo = full.copy()  # rows left for np.quantile
    if samples.size >= _COMPILED_QUANTILES and samples.shape[1] > 0:
        # many draws: a compiled pass per row, the values np.quantile gives (imports numba)
        from bayesproxy.methods.quantile_loops import row_quantiles

        values, done = row_quantiles(samples, probs)
        out[:, done] = values[:, done]
        todo &= ~done
    if todo.all():  # row blocks on parallel threads (NumPy partitions without the GIL)

        def block(rows: slice) -> None:
            out[:, rows] = np.quantile(samples[rows], probs, axis=1)

        for_row_blocks(block, samples.shape[0])
    elif todo.any():
        out[:, todo] = np.quantile(samples[todo], probs, axis=1)
    partial = ~full & usable.any(axis=1)
    if partial.any():
        out[:, partial] = np.nanquantile(samples[partial], probs, axis=1)
    return list(out)


def make_forecast_frame(
    units: Sequence[str],
    *,
    model: Sequence[str],
    step: Sequence[float],
    mean: np.ndarray,
    samples: np.ndarray | None = None,
    prob: float = 0.9,
    threshold: float | None = None,
    distance: np.ndarray | None = None,
    extrapolation: np.ndarray | None = None,
) -> pd.DataFrame:
    """Build the forecast frame every forecaster returns.

    Parameters
    ----------
    units, model, step : sequence
        Unit labels and their ``model`` and ``step`` coordinates.
    mean : ndarray, shape (n_units,)
        Point forecast of the target per unit.
    samples : ndarray, shape (n_units, n_samples), optional
        Predictive draws. Without them (a method with no honest uncertainty) ``median`` is the
        point forecast and ``lower``, ``upper``, ``p_above`` are NaN.
    prob : float, default 0.9
        Central interval probability for ``lower``/``upper``.
    threshold : float, optional
        ``p_above`` is the share of draws above it; NaN when not given.
    distance : ndarray, optional
        Distance from the training units in training SDs (NaN when not given).
    extrapolation : ndarray of bool, optional
        Whether a unit lies outside the training units; defaults to ``distance > 0``.

    Returns
    -------
    pandas.DataFrame
        One row per unit with the columns :data:`FORECAST_COLUMNS`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> frame = make_forecast_frame(
    ...     ["a", "b"], model=["a", "b"], step=[np.nan, np.nan], mean=np.array([0.2, 0.6]),
    ...     samples=rng.normal([[0.2], [0.6]], 0.05, size=(2, 500)), threshold=0.5,
    ... )
    >>> list(frame.columns) == list(FORECAST_COLUMNS)
    True
    >>> frame["p_above"].round(1).tolist()
    [0.0, 1.0]
    """
    if not 0.0 < prob < 1.0:
        raise MethodInputError(
            f"prob must lie strictly between 0 and 1, got {prob!r}.",
            hint="pass the central interval probability, e.g. prob=0.9.",
        )
    n = len(units)
    mean = np.asarray(mean, dtype=float).reshape(n)
    nan = np.full(n, np.nan)
    if samples is None:
        median, lower, upper, p_above = mean.copy(), nan, nan.copy(), nan.copy()
    else:
        samples = np.asarray(samples, dtype=float).reshape(n, -1)
        alpha = (1.0 - prob) / 2.0
        usable = np.isfinite(samples)
        lower, median, upper = _row_quantiles(samples, (alpha, 0.5, 1.0 - alpha), usable)
        if threshold is None:
            p_above = nan.copy()
        else:
            count = usable.sum(axis=1)
            above = np.sum(usable & (np.nan_to_num(samples, nan=-np.inf) > threshold), axis=1)
            p_above = np.where(count > 0, above / np.maximum(count, 1), np.nan)
    dist = nan.copy() if distance is None else np.asarray(distance, dtype=float).reshape(n)
    if extrapolation is None:
        extrapolation = np.nan_to_num(dist, nan=0.0) > 0
    return pd.DataFrame(
        {
            "unit": np.asarray(units, dtype=object),
            "model": np.asarray(model, dtype=object),
            "step": np.asarray(step, dtype=float),
            "mean": mean,
            "median": median,
            "lower": lower,
            "upper": upper,
            "p_above": p_above,
            "distance": dist,
            "extrapolation": np.asarray(extrapolation, dtype=bool).reshape(n),
        },
        columns=list(FORECAST_COLUMNS),
    )


# short name -> "module:attribute"; modules are imported on first use (PyMC only for
# proxy-bayes), so listing the methods is free.
_REGISTRY: dict[str, str] = {
    "proxy-bayes": "bayesproxy.model:ProxyForecaster",
    "proxy-selection": "bayesproxy.methods.proxy_selection:ProxySelectionForecaster",
    "weighted-ensemble": "bayesproxy.methods.weighted_ensemble:WeightedEnsembleForecaster",
    "compute-sigmoid": "bayesproxy.methods.compute_sigmoid:ComputeSigmoidForecaster",
    "pca-sigmoid": "bayesproxy.methods.pca_sigmoid:PCASigmoidForecaster",
    "loss-accuracy": "bayesproxy.methods.loss_accuracy:LossAccuracyForecaster",
    "mean-proxy-sigmoid": "bayesproxy.methods.mean_proxy:MeanProxySigmoidForecaster",
}


def available_methods() -> list[str]:
    """Short names of every forecasting method :func:`get_method` knows.

    Returns
    -------
    list of str

    Examples
    --------
    >>> available_methods()[:3]
    ['proxy-bayes', 'proxy-selection', 'weighted-ensemble']
    """
    return list(_REGISTRY)


def get_method_class(name: str) -> type:
    """Return the forecaster class registered under ``name`` (imported on first use).

    Parameters
    ----------
    name : str
        A name from :func:`available_methods`.

    Returns
    -------
    type

    Examples
    --------
    >>> get_method_class("pca-sigmoid").__name__
    'PCASigmoidForecaster'
    """
    if name not in _REGISTRY:
        raise UnknownMethodError(name, available_methods())
    module_name, attribute = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), attribute)


def get_method(name: str, **kwargs: Any) -> Forecaster:
    """Create a new, unfitted forecaster by short name.

    Parameters
    ----------
    name : str
        A name from :func:`available_methods`, e.g. ``"compute-sigmoid"``.
    **kwargs
        Passed to the forecaster's constructor (``target=...`` and method options).

    Returns
    -------
    Forecaster

    Examples
    --------
    >>> get_method("pca-sigmoid", target="gsm8k", n_components=2).n_components
    2
    """
    return get_method_class(name)(**kwargs)
