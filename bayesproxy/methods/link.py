"""The bounded sigmoid link shared by every sigmoid method.

``y = c + (u - c) * sigmoid(a + b * x)``: ``c`` is the target's chance floor, ``u`` its
ceiling, ``a`` and ``b`` are fitted by least squares. The link can never leave ``[c, u]``,
which is what bounds the extrapolation of the methods built on it.

Examples
--------
>>> import numpy as np
>>> x = np.linspace(-3, 3, 40)
>>> y = 0.25 + 0.75 / (1 + np.exp(-(0.5 + 2.0 * x)))
>>> link = fit_sigmoid_link(x, y, chance=0.25)
>>> round(link.a, 2), round(link.b, 2)
(0.5, 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.special import expit, logit

from bayesproxy.methods.base import MethodInputError

__all__ = ["SigmoidLink", "fit_sigmoid_link"]

_MIN_POINTS = 3


@dataclass(frozen=True, eq=False)
class SigmoidLink:
    """A fitted bounded sigmoid ``y = chance + (ceiling - chance) * sigmoid(a + b · x)``.

    Attributes
    ----------
    a : float
        Intercept.
    b : float or ndarray
        Slope on the scale of ``x`` (a vector for a matrix input).
    chance, ceiling : float
        Floor and ceiling of the link (the range predictions are confined to).
    x_min, x_max : float or ndarray
        Range of the ``x`` values the link was fitted on.
    rmse : float
        Root mean squared residual on the fitting points.

    Examples
    --------
    >>> link = SigmoidLink(a=0.0, b=1.0, chance=0.0, ceiling=1.0, x_min=-1, x_max=1, rmse=0.0)
    >>> float(link(0.0))
    0.5
    """

    a: float
    b: float | np.ndarray
    chance: float
    ceiling: float
    x_min: float | np.ndarray
    x_max: float | np.ndarray
    rmse: float

    def eta(self, x: np.ndarray | float) -> np.ndarray:
        """Linear predictor ``a + b · x``."""
        x = np.asarray(x, dtype=float)
        return self.a + (x @ np.asarray(self.b) if x.ndim == 2 else self.b * x)

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        """Evaluate the link at ``x`` (always within ``[chance, ceiling]``)."""
        return self.chance + (self.ceiling - self.chance) * expit(self.eta(x))


def _starts(x: np.ndarray, y: np.ndarray, chance: float, ceiling: float) -> list[np.ndarray]:
    """Return starts on the standardized scale: a logit-linear fit plus a small grid."""
    frac = np.clip((y - chance) / (ceiling - chance), 0.02, 0.98)  # finite logits at bounds
    design = np.column_stack([np.ones(len(x)), x])
    coef = np.linalg.lstsq(design, logit(frac), rcond=None)[0]
    starts = [coef]
    direction = coef[1:] / (np.linalg.norm(coef[1:]) or 1.0)
    # the emergence point may sit anywhere in (or beyond) the data; a grid guards against
    # the logit-linear start landing on a flat plateau
    for a0 in (-4.0, -1.0, 0.0, 2.0):
        for scale in (0.5, 2.0, 5.0):
            starts.append(np.concatenate([[a0], scale * direction]))
    return starts


def fit_sigmoid_link(
    x: np.ndarray,
    y: np.ndarray,
    *,
    chance: float = 0.0,
    ceiling: float = 1.0,
    fit_ceiling: bool = False,
    increasing: bool | np.ndarray = True,
    ridge: float | np.ndarray = 0.0,
    start: SigmoidLink | None = None,
) -> SigmoidLink:
    """Fit ``y = c + (u - c) * sigmoid(a + b · x)`` by least squares.

    Each column of ``x`` is standardized internally (the fit is then mapped back); the
    starts are a linear fit of ``logit((y - c) / (u - c))`` on ``x`` plus a small grid, and the
    best of the resulting local optima is kept.

    Parameters
    ----------
    x : ndarray, shape (n,) or (n, d)
        Link input (a matrix for several inputs, e.g. principal components).
    y : ndarray, shape (n,)
        Target scores. Rows with a NaN anywhere are dropped.
    chance : float, default 0.0
        The floor ``c`` (the target's chance level).
    ceiling : float, default 1.0
        The ceiling ``u``; with ``fit_ceiling=True`` the upper bound of a fitted ceiling.
    fit_ceiling : bool, default False
        Also fit ``u`` within ``[max(c + 0.05, max(y)), ceiling]``.
    increasing : bool or ndarray of bool, default True
        Constrain ``b >= 0`` (per column when an array): a monotone increasing link.
    ridge : float or ndarray, default 0.0
        Ridge penalty on the standardized slopes (per column when an array), e.g. to shrink
        per-family intercept deviations towards zero.
    start : SigmoidLink, optional
        A previous fit to start from (e.g. the full-data fit when refitting bootstrap
        resamples): replaces the grid of starting values, which makes refits much faster.

    Returns
    -------
    SigmoidLink

    Raises
    ------
    MethodInputError
        Fewer than three usable points, a constant ``x``, or ``chance >= ceiling``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = rng.uniform(-2, 2, 60)
    >>> y = 1 / (1 + np.exp(-3 * x)) + rng.normal(0, 0.02, 60)
    >>> bool(abs(fit_sigmoid_link(x, y).b - 3.0) < 0.2)
    True
    """
    x = np.asarray(x, dtype=float)
    vector = x.ndim == 1
    x2 = x.reshape(len(x), -1)
    y = np.asarray(y, dtype=float).ravel()
    keep = np.all(np.isfinite(x2), axis=1) & np.isfinite(y)
    x2, y = x2[keep], y[keep]
    d = x2.shape[1]
    if not 0.0 <= chance < ceiling:
        raise MethodInputError(
            f"the link needs 0 <= chance < ceiling, got chance={chance}, ceiling={ceiling}.",
            hint="check the target's chance level in the task table (or pass chance=...).",
        )
    if len(y) < max(_MIN_POINTS, d + 2):
        raise MethodInputError(
            f"a sigmoid link on {d} input(s) needs at least {max(_MIN_POINTS, d + 2)} units "
            f"with both the link input and the target observed; got {len(y)}.",
            hint="fit on a table where more units have the target and the proxies evaluated.",
        )
    mx, sx = np.mean(x2, axis=0), np.std(x2, axis=0)
    if not np.all(sx > 0):
        raise MethodInputError(
            "the link input is constant across the training units, so no slope can be fitted.",
            hint="use proxies (or a compute column) that vary across the training units.",
        )
    xs = (x2 - mx) / sx
    lo_u = min(ceiling, max(chance + 0.05, float(np.max(y))))
    fit_ceiling = fit_ceiling and lo_u < ceiling  # data already at the ceiling: fix it
    penalty = np.sqrt(np.broadcast_to(np.asarray(ridge, dtype=float), (d,)))

    def unpack(p: np.ndarray) -> tuple[float, np.ndarray, float]:
        return p[0], p[1 : d + 1], (p[d + 1] if fit_ceiling else ceiling)

    def residuals(p: np.ndarray) -> np.ndarray:
        a, b, u = unpack(p)
        fitted = chance + (u - chance) * expit(a + xs @ b)
        return np.concatenate([fitted - y, penalty * b])

    mono = np.broadcast_to(np.asarray(increasing, dtype=bool), (d,))
    lower = np.concatenate([[-50.0], np.where(mono, 0.0, -50.0)])
    upper = np.full(d + 1, 50.0)
    if start is None or np.size(start.b) != d:
        starts = _starts(xs, y, chance, ceiling)
    else:  # the previous fit, mapped to this standardized scale, and the logit-linear start
        b0 = np.broadcast_to(np.asarray(start.b, dtype=float), (d,))
        starts = [
            np.concatenate([[start.a + b0 @ mx], b0 * sx]),
            _starts(xs, y, chance, ceiling)[0],
        ]
    if fit_ceiling:
        lower, upper = np.append(lower, lo_u), np.append(upper, ceiling)
    best = None
    for p_start in starts:
        p0 = np.clip(p_start, lower[: d + 1] + 1e-9, upper[: d + 1] - 1e-9)
        if fit_ceiling:
            p0 = np.append(p0, 0.5 * (lo_u + ceiling))
        result = least_squares(residuals, p0, bounds=(lower, upper), method="trf")
        if best is None or result.cost < best.cost:
            best = result
    assert best is not None
    a, b, u = unpack(best.x)
    rmse = float(np.sqrt(np.mean(residuals(best.x)[: len(y)] ** 2)))
    b_raw = b / sx  # back to the scale of x: a + b · (x - mx) / sx
    a_raw = float(a - b_raw @ mx)
    lo, hi = np.min(x2, axis=0), np.max(x2, axis=0)
    return SigmoidLink(
        a=a_raw,
        b=float(b_raw[0]) if vector else b_raw,
        chance=float(chance),
        ceiling=float(u),
        x_min=float(lo[0]) if vector else lo,
        x_max=float(hi[0]) if vector else hi,
        rmse=rmse,
    )
