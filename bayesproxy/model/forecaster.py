"""``ProxyForecaster``: fit the hierarchical proxy model, forecast, weigh and rank.

The lifecycle is configure -> :meth:`ProxyForecaster.fit` -> query (``forecast``,
``weights``, ``rank``, ``diagnostics``) -> :meth:`~ProxyForecaster.save`; nothing samples in
the constructor and nothing mutates the caller's table.

Examples
--------
>>> from bayesproxy import datasets  # doctest: +SKIP
>>> table = datasets.simulate(holdout_share=0.2, random_seed=1).table  # doctest: +SKIP
>>> fc = ProxyForecaster(target="target")
>>> fc = fc.fit(table, draws=300, tune=300, chains=2)  # doctest: +SKIP
>>> fc.forecast(prob=0.9).columns.tolist()[:4]  # doctest: +SKIP
['unit', 'model', 'step', 'mean']
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import xarray as xr

from bayesproxy.errors import BayesproxyError
from bayesproxy.methods.base import (
    FORECAST_COLUMNS,
    MethodInputError,
    NotFittedError,
    make_forecast_frame,
)
from bayesproxy.model.convergence import ConvergenceReport, check_convergence, enforce
from bayesproxy.model.derived import add_derived
from bayesproxy.model.design import (
    Design,
    Scaling,
    build_design,
    data_fingerprint,
    table_dataset,
)
from bayesproxy.model.persistence import SCHEMA_VERSION, read_datatree, write_datatree
from bayesproxy.model.predict import (
    ParamDraws,
    conjugate_capability,
    distances,
    one_factor_capability,
    param_draws,
    target_draws,
)
from bayesproxy.model.predictive import add_predictive_groups, observed_score_draws
from bayesproxy.model.priors import priors_to_json, resolve_priors
from bayesproxy.model.sampling import (
    DENSITIES,
    SamplerSettings,
    sample_model,
    structure_key,
    uses_hand_written,
)
from bayesproxy.model.spec import model_spec

__all__ = ["ProxyForecaster"]

#: Posterior draws used by forecasts (evenly thinned); enough for 90% intervals.
FORECAST_DRAWS = 1000
#: What a forecast is of: the score a new evaluation reports, or the unit's true score.
FORECAST_KINDS = ("observed", "true")


def _check_kind(kind: str) -> str:
    if kind not in FORECAST_KINDS:
        raise MethodInputError(
            f"kind must be 'observed' or 'true', got {kind!r}.",
            hint="'observed' forecasts the score a new evaluation would report (with its "
            "sampling noise); 'true' the unit's expected score.",
        )
    return kind


def _version() -> str:
    from bayesproxy import __version__

    return __version__


class ProxyForecaster:
    """The hierarchical Bayesian proxy model of an emergent target.

    Parameters
    ----------
    target : str, optional
        The task to forecast; default the fitted table's target.
    proxies : sequence of str, optional
        Proxy tasks; default every other task of the table.
    priors : mapping, optional
        Overrides merged over :func:`~bayesproxy.model.priors.default_priors`.
    n_factors : int, default 1
        Dimension of the latent capability (1 to 3).
    target_accept : float, default 0.9
        NUTS target acceptance rate.
    nuts_sampler : str, default "nutpie"
        ``"nutpie"``, or a sampler name passed to :func:`pymc.sample`.
    density : {"auto", "pymc"}, default "auto"
        How nutpie evaluates the log density. ``"auto"``: the hand-written density of the
        default model (one factor, Binomial target: no compilation per model, gradients
        several times cheaper), PyMC's compiled graph for any other model; ``"pymc"``:
        always the compiled graph. Both are the same density (the tests hold them equal).

    Attributes
    ----------
    name : str
        ``"proxy-bayes"``.
    datatree : xarray.DataTree
        The fit (posterior, sample_stats, observed_data, design), after :meth:`fit`.

    Examples
    --------
    >>> fc = ProxyForecaster(target="gsm8k", n_factors=1)
    >>> fc.name, fc.target
    ('proxy-bayes', 'gsm8k')
    """

    name = "proxy-bayes"

    def __init__(
        self,
        target: str | None = None,
        *,
        proxies: Sequence[str] | None = None,
        priors: Mapping[str, Any] | None = None,
        n_factors: int = 1,
        target_accept: float = 0.9,
        nuts_sampler: str = "nutpie",
        density: str = "auto",
    ) -> None:
        if not isinstance(n_factors, int) or not 1 <= n_factors <= 3:
            raise MethodInputError(
                f"n_factors must be an integer from 1 to 3, got {n_factors!r}.",
                hint="use n_factors=1 unless proxies clearly measure several abilities.",
            )
        if not 0.5 <= float(target_accept) < 1.0:
            raise MethodInputError(
                f"target_accept must lie in [0.5, 1), got {target_accept!r}.",
                hint="use 0.9, or 0.95 after divergences.",
            )
        if density not in DENSITIES:
            raise MethodInputError(
                f"density must be one of {list(DENSITIES)}, got {density!r}.",
                hint='use "auto" (the default) unless checking against the PyMC graph.',
            )
        self.density = density
        self.target = target or ""
        self.proxies = list(proxies) if proxies is not None else None
        self.priors = resolve_priors(priors)
        self.n_factors = n_factors
        self.target_accept = float(target_accept)
        self.nuts_sampler = nuts_sampler
        self._dt: xr.DataTree | None = None
        self._report: ConvergenceReport | None = None

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        table: Any,
        *,
        draws: int = 2000,
        tune: int = 1000,
        chains: int = 4,
        random_seed: int | None = None,
        strict: bool = False,
        progressbar: bool | None = None,
    ) -> Self:
        """Sample the posterior on ``table`` and run the convergence gate.

        Parameters
        ----------
        table : BenchmarkTable
            Units with an observed target train the link; units without it are forecast.
        draws, tune, chains : int
            MCMC settings (per chain).
        random_seed : int, optional
            Same seed, same posterior and same forecasts.
        strict : bool, default False
            Raise :class:`~bayesproxy.errors.ConvergenceError` instead of warning when the
            gate fails.
        progressbar : bool, optional
            Default: shown only when stderr is a terminal.

        Returns
        -------
        ProxyForecaster
            ``self``, fitted.

        Warns
        -----
        ConvergenceWarning
            R-hat > 1.01, ESS under the floor, or divergences (the message says what to do).

        Examples
        --------
        >>> fc = ProxyForecaster(target="t")
        >>> fc.fit(None)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        DesignError: expected a BenchmarkTable, got NoneType.
        """
        import pymc as pm

        from bayesproxy.model.build import build_model

        for label, value in (("draws", draws), ("tune", tune), ("chains", chains)):
            if not isinstance(value, int) or value < 1:
                raise MethodInputError(
                    f"{label} must be a positive integer, got {value!r}.",
                    hint="e.g. draws=1000, tune=1000, chains=4.",
                )
        target = self.target or str(getattr(table, "target", "") or "")
        if not target:
            ds = getattr(table, "dataset", None)
            target = str(ds.attrs.get("target", "")) if ds is not None else ""
        if not target and table is not None and hasattr(table, "dataset"):
            raise MethodInputError(
                "no target task was given and the table names none.",
                hint="pass ProxyForecaster(target='TASK') or read the table with target=...",
            )
        design = build_design(table, target=target or "?", proxies=self.proxies)
        self.target = target
        if self.n_factors > len(design.proxies):
            raise MethodInputError(
                f"n_factors={self.n_factors} exceeds the number of proxies "
                f"({len(design.proxies)}).",
                hint="use fewer factors or add proxies.",
            )
        seed = (
            int(random_seed)
            if random_seed is not None
            else int(np.random.default_rng().integers(2**31 - 1))
        )
        if progressbar is None:
            progressbar = sys.stderr.isatty()
        if self.nuts_sampler == "nutpie" and uses_hand_written(
            design, n_factors=self.n_factors, density=self.density
        ):
            # the hand-written density needs only the model's names and dimensions: the
            # PyMC model is built once per kind of design and process (0.4 s a fit)
            model = model_spec(design, priors=self.priors, n_factors=self.n_factors)
            free = list(model.free_names)
            key = ""  # no PyMC sampler to cache
        else:
            model = build_model(design, priors=self.priors, n_factors=self.n_factors)
            free = [rv.name for rv in model.free_RVs]
            key = structure_key(model, extra=self._structure(design))
        sampler = {
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "random_seed": seed,
            "target_accept": self.target_accept,
            "nuts_sampler": self.nuts_sampler,
            "density": self.density,
        }
        if self.nuts_sampler == "nutpie":
            trace, reused, used = sample_model(
                model,
                design,
                priors=self.priors,
                density=self.density,
                var_names=free + (["capability"] if self.n_factors > 1 else []),
                key=key,
                settings=SamplerSettings(
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    seed=seed,
                    target_accept=self.target_accept,
                    progressbar=progressbar,
                ),
            )
            sampled = trace["posterior"].to_dataset()
            sample_stats = trace["sample_stats"].to_dataset()
            sampler["density_used"] = used
        else:
            with model:
                trace = pm.sample(
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    cores=1 if chains == 1 else min(chains, 2),
                    random_seed=seed,
                    target_accept=self.target_accept,
                    nuts_sampler=self.nuts_sampler,
                    progressbar=progressbar,
                    compute_convergence_checks=False,
                )
            sampled = trace["posterior"].to_dataset()
            sample_stats = trace["sample_stats"].to_dataset()
            reused = False
        # the sampler's own transformed names (e.g. *_log__) are not user variables
        free = [name for name in free if name in sampled]
        # The convergence gate reads only the sampled variables: it runs on a thread of its
        # own while the derived quantities and predictive groups are computed (NumPy, mostly
        # outside the GIL), which saves ~0.3 s of a warm fit on two cores.
        with ThreadPoolExecutor(max_workers=1) as pool:
            gate = pool.submit(
                check_convergence,
                xr.DataTree.from_dict({"posterior": sampled[free], "sample_stats": sample_stats}),
                var_names=free,
            )
            posterior = (
                add_derived(sampled, design, n_factors=self.n_factors, priors=self.priors)
                if self.nuts_sampler == "nutpie"
                else sampled
            )
            dt = xr.DataTree.from_dict(
                {
                    "posterior": posterior,
                    "sample_stats": sample_stats,
                    "design": _design_dataset(design, self.n_factors),
                }
            )
            sampler["compiled_sampler_reused"] = reused
            dt.attrs = {
                "bayesproxy_version": _version(),
                "schema_version": SCHEMA_VERSION,
                "target": target,
                "proxies": json.dumps(list(design.proxies)),
                "priors": priors_to_json(self.priors),
                "sampler": json.dumps(sampler),
                "data_fingerprint": data_fingerprint(table),
                "n_factors": self.n_factors,
                "free_variables": json.dumps(free),
            }
            # the target's posterior predictive and pointwise log-likelihood (for PPC,
            # LOO-PIT and ELPD), computed in NumPy from the posterior: no second compilation
            dt = add_predictive_groups(dt)
            report = gate.result()
        self._dt = dt
        self._report = report
        enforce(self._report, strict=strict)
        return self

    # ------------------------------------------------------------------ state
    @property
    def datatree(self) -> xr.DataTree:
        """The fit as an :class:`xarray.DataTree` (for ArviZ)."""
        if self._dt is None:
            raise NotFittedError(self.name)
        return self._dt

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run."""
        return self._dt is not None

    def _structure(self, design: Design) -> dict[str, Any]:
        """Constants baked into the compiled model besides the table's shapes."""
        from bayesproxy.model.build import noise_split

        return {
            "priors": priors_to_json(self.priors),
            "n_factors": self.n_factors,
            "chance": design.target_chance,
            "likelihood": design.likelihood,
            "noise_split": [idx.tolist() for idx in noise_split(design)],
        }

    def _sampler(self) -> dict[str, Any]:
        return json.loads(self.datatree.attrs["sampler"])

    def _design_ds(self) -> xr.Dataset:
        return self.datatree["design"].to_dataset()

    def _scaling(self) -> Scaling:
        d = self._design_ds()
        return Scaling(
            proxies=[str(p) for p in d["proxy"].values],
            transform=[str(t) for t in d["transform"].values],
            chance=np.asarray(d["proxy_chance"].values, float),
            sign=np.asarray(d["sign"].values, float),
            center=np.asarray(d["center"].values, float),
            scale=np.asarray(d["scale"].values, float),
            compute_center=float(d.attrs["compute_center"]),
            compute_scale=float(d.attrs["compute_scale"]),
        )

    def _rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([int(self._sampler()["random_seed"]), salt])

    def _draws(self) -> ParamDraws:
        ceiling = self.priors["ceiling"]
        return param_draws(
            self.datatree["posterior"].to_dataset(),
            max_draws=FORECAST_DRAWS,
            ceiling=None if math.isnan(ceiling) else max(ceiling, self._chance() + 1e-3),
        )

    def _chance(self) -> float:
        return float(self._design_ds().attrs["target_chance"])

    def _reference(self, draws: ParamDraws) -> np.ndarray:
        """Posterior mean capability of the training units with an observed target."""
        d = self._design_ds()
        cap = self.datatree["posterior"]["capability"]
        mean = np.asarray(cap.mean(("chain", "draw")).values, float)
        return mean[np.asarray(d["has_target"].values, bool)]

    # ------------------------------------------------------------------ samples
    def _unit_samples(
        self,
        table: Any | None,
        *,
        which: str,
        rng: np.random.Generator,
        kind: str = "true",
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
        """Units (frame of unit/model/step), target draws (N, S), distance, excess.

        ``which`` is ``"missing"`` (fitted units with no target) or ``"all"``; ``kind`` is
        ``"true"`` (the true score q) or ``"observed"`` (q plus a new evaluation's noise).
        """
        draws = self._draws()
        reference = self._reference(draws)
        d = self._design_ds()
        chance = self._chance()
        if table is None:
            has_target = np.asarray(d["has_target"].values, bool)
            keep = ~has_target if which == "missing" else np.ones_like(has_target)
            cap = self.datatree["posterior"]["capability"].stack(sample=("chain", "draw"))
            theta_all = np.moveaxis(np.asarray(cap.values, float), -1, 0)[draws.index]
            theta = theta_all[:, keep]
            theta_mean = theta.mean(axis=0)
            delta = theta_sd = None
            if which == "all":
                post = self.datatree["posterior"].to_dataset().stack(sample=("chain", "draw"))
                z = np.moveaxis(np.asarray(post["discrepancy_z"].values, float), -1, 0)
                sd = np.asarray(post["discrepancy_sd"].values, float)
                delta = np.full(theta.shape[:2], np.nan)
                delta[:, has_target] = (z * sd[:, None])[draws.index]
            units = pd.DataFrame(
                {
                    "unit": np.asarray(d["unit"].values).astype(str)[keep],
                    "model": np.asarray(d["model"].values).astype(str)[keep],
                    "step": np.asarray(d["step"].values, float)[keep],
                }
            )
        else:
            design = build_design(
                table, target=self.target, scaling=self._scaling(), require_target=False
            )
            delta = theta_sd = None
            if draws.values["slope_mu"].shape[-1] == 1:
                # the capability's noise joins the link's: one normal per draw and unit
                theta, theta_sd, theta_mean = one_factor_capability(draws, design)
            else:
                theta, theta_mean = conjugate_capability(draws, design, rng=rng)
            units = pd.DataFrame(
                {
                    "unit": design.units,
                    "model": np.asarray(design.model).astype(str),
                    "step": design.step,
                }
            )
        dist, excess = distances(theta_mean, reference)
        samples = target_draws(
            draws,
            theta,
            chance=chance,
            excess=excess,
            extrapolation_scale=self.priors["extrapolation_scale"],
            rng=rng,
            reference_cov=np.cov(reference, rowvar=False) if len(reference) > 1 else None,
            delta=delta,
            theta_sd=theta_sd,
        )
        if kind == "observed":
            samples = self._observed_scores(samples, draws, table=table, rng=rng)
        return units, samples, dist, excess

    def _observed_scores(
        self, q: np.ndarray, draws: ParamDraws, *, table: Any | None, rng: np.random.Generator
    ) -> np.ndarray:
        """Scores a new evaluation would report given true-score draws ``q`` (N, S)."""
        likelihood = str(self._design_ds().attrs["likelihood"])
        if likelihood == "binomial":
            return observed_score_draws(
                q, likelihood=likelihood, n_items=self._item_counts(table, len(q)), rng=rng
            )
        kappa = self.datatree["posterior"]["concentration"].stack(sample=("chain", "draw"))
        return observed_score_draws(
            q,
            likelihood=likelihood,
            concentration=np.asarray(kappa.values, float)[draws.index],
            rng=rng,
        )

    def log_predictive_density(self, table: Any) -> pd.Series:
        """Log posterior predictive density of each unit's observed target score.

        The backtest harness sums it over held-out units into ELPD. Every unit of ``table``
        is forecast from its proxies (its target is not used for that), and the density of
        its observed score (mean over replicates) is ``log mean_s p(y | q_s)`` over
        posterior draws: a Beta density with the fitted concentration, or for a Binomial
        target the probability of the observed successes times ``n`` (a density on the
        score scale, comparable across methods). Scores are clipped into
        ``[0.002, 0.998]`` for the Beta, as in the fit.

        Parameters
        ----------
        table : BenchmarkTable
            Units with an observed target (others get NaN).

        Returns
        -------
        pandas.Series
            Indexed by unit.
        """
        from scipy import special, stats

        from bayesproxy.model.design import ACCURACY_EPS

        if self._dt is None:
            raise NotFittedError(self.name)
        units, q, _, _ = self._unit_samples(table, which="missing", rng=self._rng(4), kind="true")
        ds = table_dataset(table)
        score = ds["score"].sel(task=self.target)
        values = np.asarray(score.values, float).reshape(score.sizes["unit"], -1)
        seen = np.isfinite(values).sum(axis=1)
        y = np.where(seen > 0, np.nansum(values, axis=1) / np.maximum(seen, 1), np.nan)
        lookup = dict(zip(np.asarray(score["unit"].values).astype(str), y, strict=True))
        y = np.array([lookup.get(str(u), np.nan) for u in units["unit"]], dtype=float)
        likelihood = str(self._design_ds().attrs["likelihood"])
        if likelihood == "binomial":
            n = self._item_counts(table, len(q))[:, None]
            k = np.clip(np.round(y[:, None] * n), 0, n)
            logp = stats.binom.logpmf(k, n.astype(int), q) + np.log(n)
        else:
            kappa = self.datatree["posterior"]["concentration"].stack(sample=("chain", "draw"))
            kappa = np.asarray(kappa.values, float)[self._draws().index][None, :]
            yc = np.clip(y, ACCURACY_EPS / 10, 1 - ACCURACY_EPS / 10)[:, None]
            logp = stats.beta.logpdf(yc, q * kappa, (1 - q) * kappa)
        lpd = special.logsumexp(logp, axis=1) - np.log(logp.shape[1])
        return pd.Series(np.where(np.isfinite(y), lpd, np.nan), index=units["unit"].to_numpy())

    def _item_counts(self, table: Any | None, n_units: int) -> np.ndarray:
        """Target items per unit: the table's target rows when known, else the training median."""
        d = self._design_ds()
        if "target_n_items" not in d:
            raise MethodInputError(
                "this fit does not record the target's item counts, which observed-score "
                "forecasts of a Binomial target need.",
                hint="refit with the current bayesproxy, or pass kind='true'.",
            )
        counts = np.full(n_units, float(np.nanmedian(d["target_n_items"].values)))
        ds = table_dataset(table) if table is not None else None
        if ds is not None and "n_items" in ds and self.target in ds["task"].values:
            items = ds["n_items"].sel(task=self.target)
            other = [dim for dim in items.dims if dim != "unit"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN units: fallback
                known = np.asarray(items.median(other, skipna=True).values, float)
            ok = np.isfinite(known) & (known >= 1)
            counts = np.where(ok, known, counts)
        return counts

    def predictive_samples(
        self,
        table: Any | None = None,
        *,
        n_samples: int = 1000,
        random_seed: int | None = None,
        kind: str = "observed",
    ) -> xr.DataArray:
        """Predictive draws of each unit's target score, dims ``(unit, sample)``.

        Parameters
        ----------
        table : BenchmarkTable, optional
            New units (forecast by the conjugate update); default the fitted table's units
            whose target is missing.
        n_samples : int, default 1000
        random_seed : int, optional
            Default: derived from the fit's seed (same fit, same draws).
        kind : {"observed", "true"}, default "observed"
            ``"observed"``: the score a new evaluation would report, i.e. the true score
            plus the fit's measurement noise (``Binomial(n_items, q) / n_items`` with the
            unit's target item count from ``table`` when known, else the training median;
            or ``Beta(q kappa, (1 - q) kappa)`` with the posterior concentration). These
            draws lie in [0, 1] and may fall below chance, as real scores do.
            ``"true"``: the unit's true (expected) score ``q``, inside [chance, ceiling].

        Returns
        -------
        xarray.DataArray

        Examples
        --------
        >>> fc.predictive_samples(n_samples=200, kind="true").dims  # doctest: +SKIP
        ('unit', 'sample')
        """
        _check_kind(kind)
        rng = self._rng(1) if random_seed is None else np.random.default_rng(random_seed)
        units, samples, _, _ = self._unit_samples(table, which="missing", rng=rng, kind=kind)
        pick = rng.choice(samples.shape[1], size=n_samples, replace=n_samples > samples.shape[1])
        return xr.DataArray(
            samples[:, pick],
            dims=("unit", "sample"),
            coords={
                "unit": units["unit"].to_numpy(),
                "model": ("unit", units["model"].to_numpy()),
                "step": ("unit", units["step"].to_numpy()),
            },
            name=self.target,
        )

    # ------------------------------------------------------------------ queries
    def forecast(
        self,
        table: Any | None = None,
        *,
        prob: float = 0.9,
        threshold: float | None = None,
        kind: str = "observed",
    ) -> pd.DataFrame:
        """Forecast the target's score with intervals, exceedance and extrapolation flags.

        Parameters
        ----------
        table : BenchmarkTable, optional
            Forecast every unit of this table (conjugate update, no MCMC; its target values
            are ignored). Default: the fitted table's units whose target is missing (an
            empty frame when there are none).
        prob : float, default 0.9
            Probability of the central interval ``[lower, upper]``.
        threshold : float, optional
            ``p_above`` is the posterior probability that the score exceeds it.
        kind : {"observed", "true"}, default "observed"
            ``"observed"`` forecasts the score a new evaluation of the unit would report:
            the true score plus the measurement noise of the fit's likelihood (Binomial
            over the unit's target item count, taken from ``table`` when known, else the
            training median; or Beta with the posterior concentration), so intervals cover
            observed scores. Its bounds lie in [0, 1] and may fall below chance.
            ``"true"`` forecasts the unit's true (expected) score ``q``; its bounds always
            lie inside ``[chance, ceiling]``. ``mean`` agrees between the two up to
            Monte Carlo error.

        Returns
        -------
        pandas.DataFrame
            Columns ``unit, model, step, mean, median, lower, upper, p_above, distance,
            extrapolation``. ``distance`` is the Mahalanobis distance of the unit's capability
            from the training units (those with an observed target) in training SDs;
            ``extrapolation`` is True when the unit lies outside the training units (one
            factor: above the largest or below the smallest training capability; several:
            beyond the largest training distance; see :func:`~bayesproxy.model.predict.distances`).
            Intervals widen with how far outside it lies.

        Examples
        --------
        >>> ProxyForecaster(target="t").forecast()  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        NotFittedError: the 'proxy-bayes' forecaster has not been fitted yet.
        """
        if self._dt is None:
            raise NotFittedError(self.name)
        _check_kind(kind)
        if table is None and np.asarray(self._design_ds()["has_target"].values, bool).all():
            # every fitted unit has its target: nothing to forecast (pass a new table)
            return pd.DataFrame(columns=list(FORECAST_COLUMNS))
        units, samples, dist, excess = self._unit_samples(
            table, which="missing", rng=self._rng(0), kind=kind
        )
        return make_forecast_frame(
            units["unit"].to_numpy(),
            model=units["model"].to_numpy(),
            step=units["step"].to_numpy(),
            mean=samples.mean(axis=1) if samples.size else np.zeros(len(units)),
            samples=samples,
            prob=prob,
            threshold=threshold,
            distance=dist,
            extrapolation=excess > 0,
        )

    def weights(self, *, prob: float = 0.9) -> pd.DataFrame:
        """Each proxy's alignment, stability and weight with central intervals.

        Alignment is the correlation of the proxy's true score with the target's latent
        link; stability the share of its variance not due to run-to-run noise; weight its
        share of the information about the target in the capability update (sum of
        absolute weights 1; negative for proxies that fall as the target rises).

        Parameters
        ----------
        prob : float, default 0.9

        Returns
        -------
        pandas.DataFrame
            One row per proxy: ``proxy``, then ``alignment``, ``alignment_lower``,
            ``alignment_upper`` and likewise for ``stability``, ``weight`` (posterior means
            and equal-tailed bounds), plus the posterior mean ``loading``.
        """
        if not 0 < prob < 1:
            raise MethodInputError(f"prob must lie in (0, 1), got {prob!r}.", hint="e.g. 0.9")
        post = self.datatree["posterior"].to_dataset()
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
        frame = pd.DataFrame({"proxy": [str(p) for p in post["proxy"].values]})
        for name in ("alignment", "stability", "weight"):
            da = post[name]
            frame[name] = da.mean(("chain", "draw")).values
            q = da.quantile([lo, hi], dim=("chain", "draw")).values
            frame[f"{name}_lower"] = q[0]
            frame[f"{name}_upper"] = q[1]
        loading = post["loading"].mean(("chain", "draw")).values
        frame["loading"] = loading[:, 0] if loading.shape[1] == 1 else list(loading)
        return frame

    def rank_samples(self, table: Any | None = None) -> tuple[pd.DataFrame, np.ndarray]:
        """Units and posterior draws of their rank on the target (1 = best), shape (N, S).

        Default: every unit of the fitted table (observed ones use their posterior).
        """
        units, samples, _, _ = self._unit_samples(table, which="all", rng=self._rng(2))
        order = np.argsort(-samples, axis=0, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(1, len(units) + 1)[:, None], axis=0)
        return units, ranks

    def rank(self, table: Any | None = None, *, prob: float = 0.9) -> pd.DataFrame:
        """Posterior distribution of each unit's rank on the target (1 = best).

        Parameters
        ----------
        table : BenchmarkTable, optional
            Rank its units; default every unit of the fitted table.
        prob : float, default 0.9

        Returns
        -------
        pandas.DataFrame
            ``unit, model, step, mean_rank, median_rank, rank_lower, rank_upper, p_best``,
            sorted by mean rank.
        """
        units, ranks = self.rank_samples(table)
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
        frame = units.copy()
        frame["mean_rank"] = ranks.mean(axis=1)
        frame["median_rank"] = np.median(ranks, axis=1)
        frame["rank_lower"] = np.quantile(ranks, lo, axis=1, method="inverted_cdf")
        frame["rank_upper"] = np.quantile(ranks, hi, axis=1, method="inverted_cdf")
        frame["p_best"] = (ranks == 1).mean(axis=1)
        return frame.sort_values("mean_rank", kind="stable").reset_index(drop=True)

    def prob_beats(self, table: Any | None = None) -> pd.DataFrame:
        """Posterior probability that the row unit beats the column unit on the target.

        Returns
        -------
        pandas.DataFrame
            Square, indexed and labelled by unit.
        """
        units, samples, _, _ = self._unit_samples(table, which="all", rng=self._rng(2))
        beats = (samples[:, None, :] > samples[None, :, :]).mean(axis=2)
        labels = units["unit"].to_numpy()
        return pd.DataFrame(beats, index=labels, columns=labels)

    def diagnostics(self) -> pd.DataFrame:
        """Return the convergence gate's table: R-hat, ESS bulk / tail and a verdict per variable.

        ``attrs`` carries ``divergences`` and ``ok``.
        """
        if self._report is None:
            free = json.loads(self.datatree.attrs["free_variables"])
            self._report = check_convergence(self.datatree, var_names=free)
        table = self._report.table.copy()
        table.attrs = {"divergences": self._report.divergences, "ok": self._report.ok}
        return table

    @property
    def converged(self) -> bool:
        """Whether the fit passes the convergence gate."""
        self.diagnostics()
        assert self._report is not None
        return self._report.ok

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the fit to a netCDF file (atomically).

        Returns
        -------
        pathlib.Path
        """
        return write_datatree(self.datatree, path)

    @classmethod
    def load(cls, path: str | Path) -> ProxyForecaster:
        """Read a fit saved by :meth:`save`.

        Raises
        ------
        ModelFileError
            Missing or corrupt file, or one written with another schema version.
        """
        dt = read_datatree(path)
        attrs = dt.attrs
        try:
            new = cls(
                target=str(attrs["target"]),
                proxies=json.loads(attrs["proxies"]),
                priors=json.loads(attrs["priors"]),
                n_factors=int(attrs["n_factors"]),
                target_accept=float(json.loads(attrs["sampler"])["target_accept"]),
                nuts_sampler=str(json.loads(attrs["sampler"])["nuts_sampler"]),
                # fits saved before the choice existed used the PyMC graph
                density=str(json.loads(attrs["sampler"]).get("density", "pymc")),
            )
        except (KeyError, ValueError, TypeError, BayesproxyError) as err:
            from bayesproxy.errors import ModelFileError

            raise ModelFileError(
                f"{str(path)!r} has incomplete provenance ({type(err).__name__}: {err}).\n"
                "Hint: refit and save again."
            ) from None
        new._dt = dt
        return new

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        return f"ProxyForecaster(target={self.target!r}, n_factors={self.n_factors}, {state})"


def _design_dataset(design: Design, n_factors: int) -> xr.Dataset:
    s = design.scaling
    ds = xr.Dataset(
        {
            "transform": ("proxy", np.asarray(s.transform, dtype=str)),
            "proxy_chance": ("proxy", s.chance),
            "sign": ("proxy", s.sign),
            "center": ("proxy", s.center),
            "scale": ("proxy", s.scale),
            "replicates": ("proxy", design.replicates_per_proxy),
            "model": ("unit", np.asarray(design.model).astype(str)),
            "step": ("unit", design.step),
            "family": ("unit", design.family.astype(str)),
            "run": ("unit", design.run.astype(str)),
            "x": ("unit", design.x),
            "has_target": ("unit", design.has_target),
            # one entry per observed target cell (unit x replicate), in the model's order:
            # what the target's predictive checks and observed-score forecasts need
            "target_unit": ("target_cell", design.target_unit.astype("int64")),
            "target_score": ("target_cell", design.target_score.astype(float)),
            "target_n_items": ("target_cell", design.target_n_items.astype(float)),
        },
        coords={
            "proxy": list(s.proxies),
            "unit": design.units.tolist(),
            "target_cell": np.arange(len(design.target_unit)),
        },
    )
    ds.attrs = {
        "compute_center": s.compute_center,
        "compute_scale": s.compute_scale,
        "target_chance": design.target_chance,
        "likelihood": design.likelihood,
        "n_factors": n_factors,
    }
    return ds
