"""Posterior predictive draws and pointwise log-likelihood of the target, in NumPy.

The model's target likelihood (see :mod:`bayesproxy.model.build`) is, per observed target
cell ``j`` of unit ``i``,

``q_j = c + (u - c) * sigmoid(alpha + beta' theta_i + discrepancy_sd * discrepancy_z_i)``

with ``k_j ~ Binomial(n_j, q_j)`` successes when every target cell has an item count, and
``y_j ~ Beta(q_j kappa, (1 - q_j) kappa)`` on the score (clipped into
``[ACCURACY_EPS / 10, 1 - ACCURACY_EPS / 10]``) otherwise. Everything here is evaluated
from the fit's ``posterior`` and ``design`` groups with NumPy, SciPy and the compiled
Binomial sampler of :mod:`bayesproxy.model.binomial`, so a fit gets its
``posterior_predictive`` and ``log_likelihood`` groups (what PPC, PSIS-LOO and LOO-PIT
need) in well under a second and without compiling the PyMC model again.

:func:`observed_score_draws` turns draws of a unit's true score ``q`` into draws of the
score a new evaluation would report (the same likelihood, on the score scale); the
forecaster's ``kind="observed"`` forecasts use it.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> q = np.full((2, 4000), 0.3)
>>> draws = observed_score_draws(q, likelihood="binomial", n_items=np.array([10, 1000]), rng=rng)
>>> draws.shape, float(draws.min()) >= 0.0, float(draws.max()) <= 1.0
((2, 4000), True, True)
>>> bool(draws[0].std() > draws[1].std())  # fewer items, noisier scores
True
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import special, stats

from bayesproxy.errors import BayesproxyError
from bayesproxy.model.design import ACCURACY_EPS

__all__ = [
    "TARGET_VAR",
    "PredictiveInputError",
    "add_predictive_groups",
    "observed_score_draws",
    "target_log_likelihood",
    "target_posterior_predictive",
]

#: Name of the target's observed variable (and of its predictive / log-likelihood arrays).
TARGET_VAR = "target_obs"
#: Name of the target cells' dimension.
CELL_DIM = "target_cell"
#: Beta parameters need ``0 < q < 1``: q is kept this far inside for sampling only.
_Q_EPS = 1e-12
_POSTERIOR_VARS = ("capability", "alpha", "beta", "discrepancy_sd", "discrepancy_z")


class PredictiveInputError(BayesproxyError, ValueError):
    """A fit that lacks what the target's predictive distribution needs."""

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(f"{message}\nHint: {hint}")


@dataclass(frozen=True)
class _Link:
    """The target likelihood's parameters per posterior draw and target cell."""

    q: np.ndarray  # (chain, draw, cell), the true score of each cell's unit
    likelihood: str  # "binomial" or "beta"
    n_items: np.ndarray | None  # (cell,) int, binomial only
    kappa: np.ndarray | None  # (chain, draw), beta only
    chain: np.ndarray
    draw: np.ndarray
    cells: np.ndarray  # target_cell coordinate values


def _group(dt: xr.DataTree, name: str) -> xr.Dataset:
    if not isinstance(dt, xr.DataTree):
        raise PredictiveInputError(
            f"expected the xarray.DataTree of a fit, got {type(dt).__name__}.",
            hint="pass ProxyForecaster(...).fit(table).datatree.",
        )
    if name not in dt.children:
        raise PredictiveInputError(
            f"the fit has no {name!r} group (groups: {sorted(dt.children)}).",
            hint="pass the DataTree of a bayesproxy fit (ProxyForecaster.fit or .load).",
        )
    return dt[name].to_dataset()


def _fixed_ceiling(dt: xr.DataTree, chance: float) -> float:
    """Return the fixed ceiling of a fit that did not learn one (as the model fixes it)."""
    try:
        value = json.loads(dt.attrs["priors"]).get("ceiling")
    except (KeyError, TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(float(value)):
        raise PredictiveInputError(
            "the posterior has no 'ceiling' and the fit's priors fix none.",
            hint="pass a fit made by ProxyForecaster (its attrs carry the priors as JSON).",
        )
    return max(float(value), chance + 1e-3)


def _target_cells(design: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read unit index, score and item count of each target cell from the design group."""
    missing = [v for v in ("target_unit", "target_score", "target_n_items") if v not in design]
    if missing:
        raise PredictiveInputError(
            f"the fit's design group lacks the target cells' arrays {missing}.",
            hint="the fit was made by an older bayesproxy: refit it to get predictive checks.",
        )
    return (
        np.asarray(design["target_unit"].values, dtype=np.int64),
        np.asarray(design["target_score"].values, dtype=float),
        np.asarray(design["target_n_items"].values, dtype=float),
    )


def _link(dt: xr.DataTree) -> _Link:
    posterior = _group(dt, "posterior")
    design = _group(dt, "design")
    missing = [v for v in _POSTERIOR_VARS if v not in posterior]
    if missing:
        raise PredictiveInputError(
            f"the posterior lacks {missing}, which the target likelihood needs.",
            hint="pass the DataTree of a ProxyForecaster fit.",
        )
    likelihood = str(design.attrs.get("likelihood", ""))
    if likelihood not in ("binomial", "beta"):
        raise PredictiveInputError(
            f"the design group names the target likelihood {likelihood!r}.",
            hint="expected 'binomial' or 'beta': refit with the current bayesproxy.",
        )
    chance = float(design.attrs.get("target_chance", 0.0))
    cell_unit, _, n_items = _target_cells(design)
    unit_labels = np.asarray(design["unit"].values).astype(str)
    labels = unit_labels[cell_unit]

    cap = posterior["capability"].transpose("chain", "draw", "unit", "factor")
    cap_units = np.asarray(cap["unit"].values).astype(str)
    z = posterior["discrepancy_z"].transpose("chain", "draw", "target_unit")
    z_units = np.asarray(z["target_unit"].values).astype(str)
    # the link is a unit's: computed once per target unit, then read off for each of its
    # replicate cells (a third of the work with 3 replicates)
    link_units, cell_link = np.unique(labels, return_inverse=True)
    cap_pos = _positions(cap_units, link_units, "capability's 'unit'")
    z_pos = _positions(z_units, link_units, "discrepancy_z's 'target_unit'")

    theta = np.asarray(cap.values, dtype=float)[:, :, cap_pos, :]  # (C, T, units, D)
    beta = np.asarray(posterior["beta"].transpose("chain", "draw", "factor").values, float)
    alpha = np.asarray(posterior["alpha"].transpose("chain", "draw").values, float)
    sd = np.asarray(posterior["discrepancy_sd"].transpose("chain", "draw").values, float)
    delta = sd[..., None] * np.asarray(z.values, dtype=float)[:, :, z_pos]
    lin = alpha[..., None] + np.einsum("ctjd,ctd->ctj", theta, beta) + delta
    if "ceiling" in posterior:
        ceiling = np.asarray(posterior["ceiling"].transpose("chain", "draw").values, float)
        ceiling = ceiling[..., None]
    else:
        ceiling = _fixed_ceiling(dt, chance)
    q = (chance + (ceiling - chance) * special.expit(lin))[:, :, cell_link]

    n_int = None
    kappa = None
    if likelihood == "binomial":
        if not np.all(np.isfinite(n_items)):
            raise PredictiveInputError(
                "the design says the target likelihood is binomial but some target cells "
                "have no item count.",
                hint="refit: the design group is inconsistent with the model.",
            )
        n_int = np.round(n_items).astype(np.int64)
    else:
        if "concentration" not in posterior:
            raise PredictiveInputError(
                "the target likelihood is Beta but the posterior has no 'concentration'.",
                hint="pass the DataTree of a ProxyForecaster fit.",
            )
        kappa = np.asarray(posterior["concentration"].transpose("chain", "draw").values, float)
    return _Link(
        q=q,
        likelihood=likelihood,
        n_items=n_int,
        kappa=kappa,
        chain=np.asarray(posterior["chain"].values),
        draw=np.asarray(posterior["draw"].values),
        cells=np.arange(len(cell_unit)),
    )


def _positions(available: np.ndarray, wanted: np.ndarray, what: str) -> np.ndarray:
    lookup = {label: i for i, label in enumerate(available)}
    absent = sorted({str(w) for w in wanted if w not in lookup})
    if absent:
        raise PredictiveInputError(
            f"target units {absent[:5]} are not in the posterior's {what} coordinate.",
            hint="the design and posterior groups come from different fits: refit.",
        )
    return np.array([lookup[w] for w in wanted], dtype=np.int64)


def _observed(dt: xr.DataTree, link: _Link) -> np.ndarray:
    """Return the observed target as the model saw it: successes or the clipped score.

    Read from ``observed_data["target_obs"]`` when the tree has it (checked against the
    design's target cells), else rebuilt from the design exactly as the model builds it.
    """
    if "observed_data" in dt.children and TARGET_VAR in dt["observed_data"].data_vars:
        have = dt["observed_data"][TARGET_VAR]
        if have.dims != (CELL_DIM,) or have.size != link.cells.size:
            raise PredictiveInputError(
                f"observed_data['{TARGET_VAR}'] has dims {have.dims} and {have.size} values; "
                f"the design has {link.cells.size} target cells.",
                hint="the groups come from different fits: refit.",
            )
        return np.asarray(have.values)
    _, score, _ = _target_cells(_group(dt, "design"))
    if link.likelihood == "binomial":
        assert link.n_items is not None
        return np.clip(np.round(score * link.n_items), 0, link.n_items).astype(np.int64)
    return np.clip(score, ACCURACY_EPS / 10, 1.0 - ACCURACY_EPS / 10)


def _dataset(values: np.ndarray, link: _Link) -> xr.Dataset:
    return xr.Dataset(
        {TARGET_VAR: (("chain", "draw", CELL_DIM), values)},
        coords={"chain": link.chain, "draw": link.draw, CELL_DIM: link.cells},
    )


def _beta_params(q: np.ndarray, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = np.clip(q, _Q_EPS, 1.0 - _Q_EPS)
    return q * kappa, (1.0 - q) * kappa


def target_posterior_predictive(dt: xr.DataTree, *, rng: np.random.Generator) -> xr.Dataset:
    """Draw replicated target observations from the posterior, as the PyMC model would.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit with ``posterior`` and ``design`` groups (``ProxyForecaster.datatree``).
    rng : numpy.random.Generator

    Returns
    -------
    xarray.Dataset
        ``target_obs`` with dims ``(chain, draw, target_cell)`` on the scale of
        ``observed_data["target_obs"]``: integer successes out of each cell's ``n_items``
        (Binomial likelihood) or the score in (0, 1) (Beta likelihood).

    Raises
    ------
    PredictiveInputError
        When the tree lacks a group or variable the likelihood needs.

    Examples
    --------
    >>> import numpy as np
    >>> fc = ProxyForecaster(target="t").fit(table)  # doctest: +SKIP
    >>> rng = np.random.default_rng(0)
    >>> pp = target_posterior_predictive(fc.datatree, rng=rng)  # doctest: +SKIP
    >>> pp["target_obs"].dims  # doctest: +SKIP
    ('chain', 'draw', 'target_cell')
    """
    return _posterior_predictive(_link(dt), rng=rng)


def _posterior_predictive(link: _Link, *, rng: np.random.Generator) -> xr.Dataset:
    if link.likelihood == "binomial":
        assert link.n_items is not None
        from bayesproxy.model.binomial import binomial_fractions  # imports numba

        # cells as rows, draws as columns; a cell of 0 items has 0 successes (the sampler
        # takes n >= 1, so it draws 1 item there and the result is discarded)
        p = np.clip(link.q, 0.0, 1.0).reshape(-1, link.q.shape[-1]).T
        n = np.maximum(link.n_items, 1)[:, None]
        counts = np.round(binomial_fractions(n[:, 0], p, rng=rng) * n)
        counts[link.n_items < 1] = 0
        values = np.ascontiguousarray(counts.T).reshape(link.q.shape).astype(np.int64)
    else:
        assert link.kappa is not None
        a, b = _beta_params(link.q, link.kappa[..., None])
        values = rng.beta(a, b)
    return _dataset(values, link)


def target_log_likelihood(dt: xr.DataTree) -> xr.Dataset:
    """Pointwise log-likelihood of each observed target cell per posterior draw.

    Equals ``pymc.compute_log_likelihood(..., var_names=["target_obs"])`` on the same fit
    (tested), without compiling the model.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit with ``posterior`` and ``design`` groups.

    Returns
    -------
    xarray.Dataset
        ``target_obs`` with dims ``(chain, draw, target_cell)``.

    Examples
    --------
    >>> ll = target_log_likelihood(fc.datatree)  # doctest: +SKIP
    >>> float(ll["target_obs"].sum(("target_cell")).mean()) < 0  # doctest: +SKIP
    True
    """
    link = _link(dt)
    return _log_likelihood(link, _observed(dt, link))


def _log_likelihood(link: _Link, observed: np.ndarray) -> xr.Dataset:
    if link.likelihood == "binomial":
        assert link.n_items is not None
        # scipy.stats.binom.logpmf takes ~0.6 s on a fit's 3 million (draw, cell) pairs;
        # the log binomial coefficient depends on the cell only, so it is taken once
        n, k = link.n_items.astype(float), np.asarray(observed, dtype=float)
        log_choose = special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
        values = log_choose + special.xlogy(k, link.q) + special.xlog1py(n - k, -link.q)
    else:
        assert link.kappa is not None
        a, b = _beta_params(link.q, link.kappa[..., None])
        values = stats.beta.logpdf(observed, a, b)
    return _dataset(np.asarray(values, dtype=float), link)


def _seed_of(dt: xr.DataTree, random_seed: int | None) -> np.random.Generator:
    if random_seed is not None:
        return np.random.default_rng(int(random_seed))
    try:
        fit_seed = int(json.loads(dt.attrs["sampler"])["random_seed"])
    except (KeyError, TypeError, ValueError):
        return np.random.default_rng()
    return np.random.default_rng([fit_seed, 3])  # same fit, same replicates


def add_predictive_groups(dt: xr.DataTree, *, random_seed: int | None = None) -> xr.DataTree:
    """Return ``dt`` with the target's ``posterior_predictive`` and ``log_likelihood`` groups.

    ``observed_data["target_obs"]`` is added as well when the tree lacks it, on the
    likelihood's scale (successes or clipped score) with the ``target_cell`` dimension.
    Existing groups of those names are replaced; ``dt`` itself is not changed.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit with ``posterior`` and ``design`` groups.
    random_seed : int, optional
        Seed of the predictive draws; default derived from the fit's own seed, so the same
        fit always gets the same replicates.

    Returns
    -------
    xarray.DataTree

    Raises
    ------
    PredictiveInputError
        When the tree lacks what the likelihood needs, or its observed ``target_obs``
        does not match the design's target cells.

    Examples
    --------
    >>> dt = add_predictive_groups(fc.datatree, random_seed=0)  # doctest: +SKIP
    >>> sorted(set(dt.children) & {"posterior_predictive", "log_likelihood"})  # doctest: +SKIP
    ['log_likelihood', 'posterior_predictive']
    """
    link = _link(dt)
    observed = _observed(dt, link)
    obs_ds = dt["observed_data"].to_dataset() if "observed_data" in dt.children else xr.Dataset()
    if TARGET_VAR not in obs_ds:
        obs_ds = obs_ds.assign({TARGET_VAR: ((CELL_DIM,), observed)})
    if CELL_DIM not in obs_ds.coords:
        obs_ds = obs_ds.assign_coords({CELL_DIM: link.cells})
    pp = _posterior_predictive(link, rng=_seed_of(dt, random_seed))
    ll = _log_likelihood(link, observed)
    groups = {node.path: node.to_dataset(inherit=False) for node in dt.subtree}
    groups["/observed_data"] = obs_ds
    groups["/posterior_predictive"] = pp.assign_coords(
        {CELL_DIM: obs_ds[TARGET_VAR][CELL_DIM].values}
    )
    groups["/log_likelihood"] = ll.assign_coords({CELL_DIM: obs_ds[TARGET_VAR][CELL_DIM].values})
    out = xr.DataTree.from_dict(groups)
    out.attrs = dict(dt.attrs)
    return out


def observed_score_draws(
    q: np.ndarray,
    *,
    likelihood: str,
    rng: np.random.Generator,
    n_items: np.ndarray | None = None,
    concentration: np.ndarray | None = None,
) -> np.ndarray:
    """Turn draws of units' true scores into draws of the score a new evaluation reports.

    Parameters
    ----------
    q : ndarray, shape (N, S)
        True-score draws per unit (rows) and posterior draw (columns).
    likelihood : {"binomial", "beta"}
        The fit's target likelihood.
    rng : numpy.random.Generator
    n_items : ndarray, shape (N,), optional
        Items per unit's evaluation (binomial): the score is ``Binomial(n, q) / n``.
    concentration : ndarray, shape (S,), optional
        The Beta concentration ``kappa`` per posterior draw (beta): the score is
        ``Beta(q kappa, (1 - q) kappa)``.

    Returns
    -------
    ndarray, shape (N, S)
        Scores in [0, 1]; unlike ``q`` they may fall below chance or above the ceiling,
        as real evaluations do. NaN where ``q`` is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> q = np.full((1, 20000), 0.5)
    >>> s = observed_score_draws(
    ...     q, likelihood="beta", concentration=np.full(20000, 50.0),
    ...     rng=np.random.default_rng(1),
    ... )
    >>> round(float(s.mean()), 2), round(float(s.var()), 3)  # q(1-q)/(kappa+1) = 0.0049
    (0.5, 0.005)
    """
    q = np.asarray(q, dtype=float)
    if q.ndim != 2:
        raise PredictiveInputError(
            f"q must have shape (units, draws), got {q.shape}.", hint="pass a 2-D array."
        )
    finite = np.isfinite(q)
    all_finite = bool(finite.all())  # usually: skip two passes over the draws
    q0 = q if all_finite else np.where(finite, q, 0.5)
    if likelihood == "binomial":
        n = np.asarray(n_items, dtype=float) if n_items is not None else None
        if n is None or n.shape != (q.shape[0],) or not np.all(np.isfinite(n) & (n >= 1)):
            raise PredictiveInputError(
                "a binomial score needs a finite item count >= 1 for every unit.",
                hint="pass n_items with one positive count per row of q.",
            )
        from bayesproxy.model.binomial import binomial_fractions  # imports numba

        draws = binomial_fractions(np.round(n).astype(np.int64), q0, rng=rng)
    elif likelihood == "beta":
        k = np.asarray(concentration, dtype=float) if concentration is not None else None
        if k is None or k.shape != (q.shape[1],) or not np.all(np.isfinite(k) & (k > 0)):
            raise PredictiveInputError(
                "a Beta score needs a positive concentration per posterior draw.",
                hint="pass concentration with one value per column of q.",
            )
        a, b = _beta_params(q0, k[None, :])
        draws = rng.beta(a, b)
    else:
        raise PredictiveInputError(
            f"likelihood={likelihood!r} is not a target likelihood.",
            hint="pass 'binomial' or 'beta'.",
        )
    return draws if all_finite else np.where(finite, draws, np.nan)
