"""Simulation-based calibration (SBC) of the one-factor proxy model with simuk.

SBC checks the model's *inference*, not its fit to any real table: draw parameters from the
prior, simulate a table from them with the full generative model, fit the model to that
table and record the rank of each true value among its posterior draws. When the sampler
and the model's log density agree with the generative model, every rank is uniform on
``0 .. L`` (``L`` posterior draws), so the ranks' PIT values ``(rank + 1/2) / (L + 1)`` are
uniform on (0, 1) across simulations (Talts et al., 2020). A miscoded likelihood term, a
prior in the log density that differs from the one simulated, or a sampler that misses
part of the posterior all show up as non-uniform ranks.

:class:`ProxySBC` keeps simuk's machinery (prior draws, ranks, the ``prior_sbc`` DataTree
that ArviZ plots) and replaces two things:

* the data: the model's proxy likelihood is a ``pm.Potential`` on a marginal (see
  :func:`~bayesproxy.model.build.build_model`), so PyMC cannot draw prior predictive
  proxies; :meth:`ProxySBC.simulate` does it in NumPy, cell for cell on the template
  table's (unit, proxy) mask (see its docstring for why it is exact);
* the posterior step: simuk's default calls ``pm.observe`` + ``pm.sample`` per simulation,
  which recompiles the model each time; here the simulated arrays are set with
  ``pm.set_data`` and sampled with :func:`~bayesproxy.model.sampling.sample_model`: on the
  hand-written density where it applies (Binomial target), else under one key, so the model
  is compiled once for all simulations.

Ranked quantities are the free parameters and the named quantities of
:mod:`bayesproxy.model.derived`. Those that depend on the data as well (``capability``,
``alpha``, ``target_p``, ``alignment``, ``stability``) are recomputed for each simulation
from its own simulated data, on the true side and on the posterior side alike: SBC holds
for any test quantity ``f(parameters, data)`` (Modrák et al., 2023), whereas PyMC's prior
group would compute them from the template table's data.

**What a pass means.** For every ranked variable each element's PIT values across the
simulations are tested for uniformity with ArviZ's ``pot_c`` test; a variable's p-value is
the Bonferroni minimum over its elements and the variables' p-values are Holm-adjusted
(family-wise level ``alpha``). A variable *passes* when its adjusted p-value is at least
``alpha``: with this many simulations, no departure from calibration was detected for it. A
pass is not proof of calibration (small biases need more simulations to detect), and it is
conditional on the template table's shapes and on the priors; it says nothing about how
well the model describes real benchmark data (that is what the backtests are for).

References: Talts, Betancourt, Simpson, Vehtari & Gelman (2020), arXiv:1804.06788;
Modrák, Moon, Kim, Bürkner, Huurre, Faltejsková, Gelman & Vehtari (2023), Bayesian
Analysis, doi:10.1214/23-BA1404; Säilynoja, Bürkner & Vehtari (2022), Statistics and
Computing 32:32.

Examples
--------
>>> from bayesproxy.model.calibration import run_sbc
>>> result = run_sbc(num_simulations=4, draws=40, tune=40, thin=2)  # doctest: +SKIP
>>> result.verdict[["variable", "p_adjusted", "passed"]].head(3)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesproxy import datasets
from bayesproxy.errors import BayesproxyError
from bayesproxy.model.build import binomial_counts, build_model, noise_split, proxy_grid
from bayesproxy.model.derived import _one_factor_capability, add_derived
from bayesproxy.model.design import ACCURACY_EPS, Design, build_design
from bayesproxy.model.priors import priors_to_json, resolve_priors
from bayesproxy.model.sampling import SamplerSettings, sample_model, structure_key


class CalibrationError(BayesproxyError, ValueError):
    """Settings a calibration run cannot use as given."""

    def __init__(self, message: str, *, hint: str) -> None:
        self.hint = hint
        super().__init__(f"{message}\nHint: {hint}")


try:
    import simuk
except ImportError as err:  # pragma: no cover - simuk is a dev dependency
    raise CalibrationError(
        "simulation-based calibration needs the simuk package, which is not installed.",
        hint="install the development dependencies (`uv sync`; simuk is in the dev group).",
    ) from err

__all__ = [
    "DEFAULT_TABLE",
    "RANKED_DERIVED",
    "CalibrationError",
    "ProxySBC",
    "SBCResult",
    "pit_values",
    "plot_sbc",
    "run_sbc",
    "sbc_verdict",
]

#: The template table of the calibration run: small enough that one fit takes seconds.
DEFAULT_TABLE: dict[str, Any] = {
    "n_families": 3,
    "n_runs_per_family": 2,
    "n_checkpoints": 4,
    "n_proxies": 5,
    "n_replicates": 2,
    "holdout_share": 0.2,
    "random_seed": 0,
}

#: Named quantities ranked besides the free parameters (those the model has). Plain
#: monotone transforms of one free parameter (e.g. ``unit_sd``) would repeat its ranks and
#: are left out, and so are plain copies (``family_intercept`` of ``family_effect``), except
#: the user-facing names ``ceiling`` (of ``ceiling_frac``) and ``loading`` (1 plus
#: ``loading_deviation``).
RANKED_DERIVED = (
    "loading",
    "family_slope",
    "noise_sd",
    "ceiling",
    "alpha",
    "capability",
    "target_p",
    "alignment",
    "stability",
    "weight",
)

#: Data arrays of the model that a simulation replaces (the rest stay the template's).
PROXY_DATA = ("proxy_mean", "proxy_sum_squares")

_SAMPLE = ("chain", "draw")


class ProxySBC(simuk.SBC):
    """Prior SBC of the one-factor proxy model on a template design, compiled once.

    Parameters
    ----------
    design : Design
        The template: its units, families, runs, compute, proxy mask, replicate counts,
        standard errors and target cells are kept; proxy scores and target outcomes are
        simulated.
    priors : dict, optional
        Prior overrides (see :func:`~bayesproxy.model.priors.resolve_priors`).
    num_simulations : int, default 200
    draws, tune, chains : int
        Sampler settings of each simulation's fit.
    thin : int, default 1
        Keep every ``thin``-th draw of each chain for the ranks (fewer, less correlated
        draws: ranks of autocorrelated draws are not uniform).
    target_accept : float, default 0.9
    seed : int, default 0
        Seeds simuk's prior draws, simulations and fits.
    progress_bar : bool, default False

    Attributes
    ----------
    compiled_reused : list of bool
        Per fit, whether the compiled sampler was reused (all but the first, when compiled
        once).
    fit_stats : list of dict
        Per fit: divergences, and the smallest bulk ESS and largest R-hat over the free
        parameters.

    Examples
    --------
    >>> from bayesproxy import datasets
    >>> table = datasets.simulate(n_families=2, n_runs_per_family=1, n_proxies=3).table
    >>> sbc = ProxySBC(build_design(table, target="target"), num_simulations=2)
    >>> data = sbc.simulate(seed=1, **sbc.prior_draws(1)[0])
    >>> sorted(data)
    ['proxy_mean', 'proxy_sum_squares', 'target_successes']
    """

    def __init__(
        self,
        design: Design,
        *,
        priors: Mapping[str, float] | None = None,
        num_simulations: int = 200,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 2,
        thin: int = 1,
        target_accept: float = 0.9,
        seed: int = 0,
        progress_bar: bool = False,
    ) -> None:
        _check_settings(num_simulations=num_simulations, draws=draws, tune=tune, chains=chains)
        if not isinstance(thin, int) or not 1 <= thin <= draws:
            raise CalibrationError(
                f"thin must be an integer between 1 and draws ({draws}), got {thin!r}.",
                hint="e.g. draws=1000, thin=10 ranks each truth among 100 draws per chain.",
            )
        self.design = design
        self.priors = resolve_priors(priors)
        self.draws, self.tune, self.chains, self.thin = draws, tune, chains, thin
        self.target_accept = float(target_accept)
        self.compiled_reused: list[bool] = []
        self.fit_stats: list[dict[str, float]] = []
        model = build_model(design, priors=self.priors, n_factors=1)
        self.free_names = [rv.name for rv in model.free_RVs]
        self.target_data = "target_successes" if design.likelihood == "binomial" else "target_score"
        strong, weak = self._noise_split = noise_split(design)
        self.key = structure_key(
            model,
            extra={
                "purpose": "sbc",
                "priors": priors_to_json(self.priors),
                "chance": design.target_chance,
                "likelihood": design.likelihood,
                "noise_split": [strong.tolist(), weak.tolist()],
            },
        )
        self._grid = proxy_grid(design)
        # the capability given no proxy cells is its hierarchical prior N(loc, s^2)
        empty_i, empty_f = np.zeros(0, dtype="int64"), np.zeros(0)
        self._bare = replace(
            design,
            cell_unit=empty_i,
            cell_proxy=empty_i,
            cell_mean=empty_f,
            cell_n=empty_f,
            cell_ss=empty_f,
            cell_se2=empty_f,
        )
        self._template = {name: model[name].get_value() for name in (*PROXY_DATA, self.target_data)}
        # simuk warns that a simulator replaces the observed variables: that is the point
        logging.disable(logging.WARNING)
        try:
            super().__init__(
                model,
                num_simulations=num_simulations,
                seed=seed,
                simulator=self.simulate,
                progress_bar=progress_bar,
            )
        finally:
            logging.disable(logging.NOTSET)

    # ------------------------------------------------------------------ data
    def _as_draw(self, values: Mapping[str, Any]) -> xr.Dataset:
        """One draw of the free parameters as a (chain, draw) dataset with model labels."""
        model = self.model
        out = {}
        for name in self.free_names:
            value = np.asarray(values[name], dtype=float)
            dims = model.named_vars_to_dims.get(name) or tuple(
                f"{name}_dim_{j}" for j in range(value.ndim)
            )
            out[name] = ((*_SAMPLE, *dims), value[None, None])
        coords = {
            dim: list(labels)
            for dim, labels in model.coords.items()
            if any(dim in v[0] for v in out.values())
        }
        # per-proxy noise parameters without a named dimension: label them by proxy
        for name, idx in zip(("noise_log_sd_centred", "noise_z"), self._noise_split, strict=True):
            if name in out and out[name][0][2:] == (f"{name}_dim_0",):
                coords[f"{name}_dim_0"] = [self.design.proxies[i] for i in idx]
        return xr.Dataset(out, coords=coords)

    def design_with(self, data: Mapping[str, np.ndarray]) -> Design:
        """Return the template design carrying a simulation's proxy scores and targets.

        Parameters
        ----------
        data : mapping
            ``proxy_mean`` and ``proxy_sum_squares`` on the (unit, proxy) grid and the target
            array (``target_successes`` or ``target_score``), as :meth:`simulate` returns.

        Returns
        -------
        Design
        """
        d = self.design
        at = (d.cell_unit, d.cell_proxy)
        score = np.asarray(data[self.target_data], dtype=float)
        if self.target_data == "target_successes":
            score = score / d.target_n_items
        return replace(
            d,
            cell_mean=np.asarray(data["proxy_mean"], dtype=float)[at],
            cell_ss=np.where(
                d.cell_n >= 2, np.asarray(data["proxy_sum_squares"], dtype=float)[at], 0.0
            ),
            target_score=score,
        )

    def prior_draws(self, n: int, *, seed: int = 0) -> list[dict[str, np.ndarray]]:
        """Draw the free parameters from the prior (to call :meth:`simulate` by hand).

        Parameters
        ----------
        n : int
            Number of draws.
        seed : int, default 0

        Returns
        -------
        list of dict of str to ndarray
        """
        values = pm.draw([self.model[name] for name in self.free_names], draws=n, random_seed=seed)
        if n == 1:  # pm.draw drops the draws axis for a single draw
            values = [np.asarray(v)[None] for v in values]
        return [
            {name: np.asarray(v[i]) for name, v in zip(self.free_names, values, strict=True)}
            for i in range(n)
        ]

    def named_quantities(self, params: Mapping[str, Any]) -> xr.Dataset:
        """Return every named quantity of one draw of the free parameters.

        Parameters
        ----------
        params : mapping
            Values of (at least) the free parameters.

        Returns
        -------
        xarray.Dataset
            One chain, one draw (see :func:`~bayesproxy.model.derived.add_derived`); the
            data-dependent ones refer to the template's data.
        """
        return add_derived(self._as_draw(params), self.design, n_factors=1, priors=self.priors)

    def simulate(self, seed: int, **params: Any) -> dict[str, np.ndarray]:
        """Simulate a table's proxy and target data from one draw of the free parameters.

        The simulator simuk calls; see :meth:`simulate_from`.

        Parameters
        ----------
        seed : int
            Seeds the simulation's noise.
        **params
            Values of (at least) the model's free parameters, as simuk passes them.

        Returns
        -------
        dict of str to ndarray
        """
        return self.simulate_from(self.named_quantities(params), seed=seed)

    def simulate_from(self, named: xr.Dataset, *, seed: int) -> dict[str, np.ndarray]:
        """Simulate a table's proxy and target data given the parameters' named quantities.

        Exact for the model's joint distribution: the proxies are drawn from their
        distribution given the parameters, with the capability integrated out (a temporary
        capability from its hierarchical prior, then replicate means
        ``N(mu_k + lambda_k theta, psi_k^2 + (sigma_k^2 + se^2) / J)`` and within-cell sums
        of squares ``(sigma_k^2 + se^2) chi^2_{J-1}``); the *true* capability is then
        ``m_i(y) + u_i / sqrt(P_i)`` with the draw's own ``capability_z`` (and, for units
        with a target, ``link_z``: see ``build._marginal_capability``), which is
        distributed as the capability given the proxies and the parameters, exactly as the
        model writes it; the target follows from that capability, the link discrepancy and
        the Binomial (or Beta) likelihood. Cells absent from the template stay absent.

        Parameters
        ----------
        named : xarray.Dataset
            From :meth:`named_quantities`.
        seed : int
            Seeds the simulation's noise.

        Returns
        -------
        dict of str to ndarray
            ``proxy_mean`` and ``proxy_sum_squares`` (units x proxies, zero where a cell is
            absent) and ``target_successes`` (Binomial) or ``target_score`` (Beta): the
            ``pm.Data`` arrays of the model they replace.
        """
        rng = np.random.default_rng(int(seed))
        d, g = self.design, self._grid

        def one(name: str) -> np.ndarray:
            return np.asarray(named[name].values[0, 0], dtype=float)

        # 1. a capability from its hierarchical prior (the capability given no proxies)
        # (fresh link_z too: the target units' capability is sampled rotated with it, and
        # this temporary capability must not depend on the draw's link_z)
        eps = rng.standard_normal(named["capability_z"].shape)
        fresh = rng.standard_normal(named["link_z"].shape)
        at_eps = named.assign(
            capability_z=(named["capability_z"].dims, eps),
            link_z=(named["link_z"].dims, fresh),
        )
        theta_prior = _one_factor_capability(at_eps, self._bare)[0][0, 0, :, 0]
        # 2. replicate means and within-cell sums of squares given that capability
        mu, lam = one("proxy_intercept"), one("loading")[:, 0]
        psi, sigma = one("unique_sd"), one("noise_sd")
        rep_var = sigma[None, :] ** 2 + g["se2"]
        cell_var = psi[None, :] ** 2 + rep_var / g["count"]
        shape = g["mean"].shape
        mean = mu[None, :] + lam[None, :] * theta_prior[:, None]
        mean = mean + np.sqrt(cell_var) * rng.standard_normal(shape)
        dof = np.maximum(2.0 * g["half_dof"], 1.0)
        ss = rep_var * rng.chisquare(dof, size=shape)
        observed = g["observed"] > 0
        data = {
            "proxy_mean": np.where(observed, mean, 0.0),
            "proxy_sum_squares": np.where(observed & (g["half_dof"] > 0), ss, 0.0),
            self.target_data: self._template[self.target_data],
        }
        with_y = self.design_with(data)
        grid = proxy_grid(with_y)  # floors sums of squares as a fit does
        data["proxy_mean"], data["proxy_sum_squares"] = grid["mean"], grid["sum_squares"]
        # 3. the true capability: theta | proxies, parameters = m(y) + z / sqrt(P)
        theta = _one_factor_capability(named, with_y)[0][0, 0, :, 0]
        # 4. the target from the capability, the link discrepancy and the likelihood
        chance = float(d.target_chance)
        ceiling = (
            float(one("ceiling"))
            if "ceiling" in named
            else max(float(self.priors["ceiling"]), chance + 1e-3)
        )
        t_units = np.unique(d.target_unit)
        t_theta = theta[t_units]
        lin = float(one("alpha_centred")) + float(one("beta")[0]) * (t_theta - t_theta.mean())
        lin = lin + float(one("discrepancy_sd")) * one("discrepancy_z")
        q = (chance + (ceiling - chance) / (1.0 + np.exp(-lin)))[
            np.searchsorted(t_units, d.target_unit)
        ]
        if self.target_data == "target_successes":
            n_items, _ = binomial_counts(d)
            data["target_successes"] = rng.binomial(n_items, q).astype("int64")
        else:
            kappa = float(one("concentration"))
            y = rng.beta(q * kappa, (1.0 - q) * kappa)
            data["target_score"] = np.clip(y, ACCURACY_EPS / 10, 1.0 - ACCURACY_EPS / 10)
        return data

    # --------------------------------------------------------------- simuk hooks
    def _ranked(self, posterior: xr.Dataset, data: Mapping[str, np.ndarray]) -> xr.Dataset:
        """Free parameters and ranked named quantities of draws, given a simulation's data."""
        full = add_derived(posterior, self.design_with(data), n_factors=1, priors=self.priors)
        names = self.free_names + [n for n in RANKED_DERIVED if n in full]
        return full[names]

    def _get_prior_predictive_samples(self):
        """Simuk's prior draws and simulations, with data-dependent references recomputed.

        The named quantities that depend on the data (capability, alpha, target_p,
        alignment, stability) are recomputed from each simulation's own data, the rest from
        the draw's free parameters, exactly as the posterior side computes them.
        """
        import warnings

        with warnings.catch_warnings():
            # the Potentials are the proxies' likelihood: the simulator draws the data
            warnings.filterwarnings("ignore", message="The effect of Potentials")
            prior, predictive = super()._get_prior_predictive_samples()
        refs = []
        for i in range(prior.sizes["sample"]):
            draw = {name: prior[name].isel(sample=i).values for name in self.free_names}
            data = {name: predictive[name].isel(sample=i).values for name in predictive}
            refs.append(self._ranked(self._as_draw(draw), data).isel(chain=0, draw=0, drop=True))
        reference = xr.concat(refs, dim="sample", coords="minimal", compat="override")
        return reference.assign_coords(sample=np.arange(prior.sizes["sample"])), predictive

    def _get_posterior_samples(self, replicated_data):
        """Fit one simulated table with the compiled sampler (compiled on the first call)."""
        idx = self._simulations_complete
        data = {name: np.asarray(value) for name, value in replicated_data.items()}
        dtype = self._template[self.target_data].dtype
        data[self.target_data] = data[self.target_data].astype(dtype)
        with self.model:
            pm.set_data(data)
        try:
            trace, reused, _ = sample_model(
                self.model,
                self.design_with(data),
                priors=self.priors,
                var_names=self.free_names,
                key=self.key,
                settings=SamplerSettings(
                    draws=self.draws,
                    tune=self.tune,
                    chains=self.chains,
                    seed=int(self._seeds[idx]),
                    target_accept=self.target_accept,
                ),
            )
        finally:
            with self.model:
                pm.set_data(self._template)
        self.compiled_reused.append(bool(reused))
        posterior = trace["posterior"].to_dataset()
        self.fit_stats.append(_fit_stats(trace, posterior[self.free_names]))
        thinned = posterior.isel(draw=slice(self.draws % self.thin, None, self.thin))
        ranked = self._ranked(thinned, data)
        ranked = ranked.transpose(*_SAMPLE, ...)
        return ranked.stack(sample=_SAMPLE).transpose("sample", ...)

    def result(
        self,
        *,
        alpha: float = 0.05,
        table: Mapping[str, Any] | None = None,
        allow_partial: bool = False,
    ) -> SBCResult:
        """Summarise finished simulations: PIT values, verdict, fits and settings.

        Parameters
        ----------
        alpha : float, default 0.05
            Family-wise level of the verdict (see :func:`sbc_verdict`).
        table : mapping, optional
            How the template table was made (recorded in the settings).
        allow_partial : bool, default False
            Summarise the simulations that finished when simuk stopped early (at least two)
            instead of raising.

        Returns
        -------
        SBCResult

        Raises
        ------
        CalibrationError
            When not every simulation finished (simuk stops at the first error).
        """
        done = self._simulations_complete
        if done < self.num_simulations and not (allow_partial and done >= 2):
            raise CalibrationError(
                f"only {done} of {self.num_simulations} simulations finished.",
                hint="see the error simuk logged above; rerun with the same seed to reproduce it.",
            )
        pit = pit_values(self.simulations, self.ref_params, n_rank_draws=self.n_rank_draws)
        verdict, elements = sbc_verdict(pit, alpha=alpha)
        fits = pd.DataFrame(self.fit_stats[:done])
        fits.insert(0, "compiled_sampler_reused", self.compiled_reused[:done])
        fits["extreme_rank_share"], fits["capability_extreme_share"] = _extreme_shares(self)
        d = self.design
        settings = {
            "num_simulations": done,
            "requested_simulations": self.num_simulations,
            "table": dict(table or {}),
            "draws": self.draws,
            "tune": self.tune,
            "chains": self.chains,
            "thin": self.thin,
            "rank_draws": self.n_rank_draws,
            "seed": self.seed,
            "target_accept": self.target_accept,
            "alpha": alpha,
            "units": d.n_units,
            "proxies": len(d.proxies),
            "proxy_cells": len(d.cell_unit),
            "target_cells": len(d.target_unit),
            "likelihood": d.likelihood,
        }
        return SBCResult(
            sbc=self, pit=pit, verdict=verdict, elements=elements, fits=fits, settings=settings
        )

    @property
    def n_rank_draws(self) -> int:
        """Posterior draws each truth is ranked among (``L``; ranks run over 0 .. L)."""
        return self.chains * (self.draws // self.thin)


def _fit_stats(trace: xr.DataTree, free: xr.Dataset) -> dict[str, float]:
    from arviz_stats import ess, rhat

    bulk = ess(free, method="bulk")
    r = rhat(free)
    return {
        "divergences": int(trace["sample_stats"]["diverging"].sum()),
        "min_ess_bulk": float(min(float(bulk[v].min()) for v in bulk.data_vars)),
        "max_rhat": float(max(float(r[v].max()) for v in r.data_vars)),
    }


def _check_settings(**values: int) -> None:
    for label, value in values.items():
        least = 2 if label == "num_simulations" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise CalibrationError(
                f"{label} must be an integer >= {least}, got {value!r}.",
                hint="e.g. num_simulations=200, draws=1000, tune=500, chains=2.",
            )


@dataclass
class SBCResult:
    """A finished calibration run.

    Attributes
    ----------
    sbc : ProxySBC or None
        The simuk object (``sbc.simulations`` holds the ranks as a ``prior_sbc`` DataTree);
        None for a result rebuilt from saved files.
    pit : xarray.DataTree
        ``prior_sbc`` group of PIT values ``(rank + 1/2) / (L + 1)``, labelled by the
        model's dimensions (what :func:`plot_sbc` draws).
    verdict : pandas.DataFrame
        One row per ranked variable (see :func:`sbc_verdict`).
    elements : pandas.DataFrame
        One row per element of each variable.
    fits : pandas.DataFrame
        Per simulation: compiled sampler reused, divergences, smallest bulk ESS, largest
        R-hat, and the share of ranks at 0 or L over all ranked elements
        (``extreme_rank_share``) and over the capability (``capability_extreme_share``):
        about 2 / (L + 1) when calibrated; near 1 when the posterior missed the truth
        wholesale (e.g. all chains in a mirrored mode).
    settings : dict
    """

    sbc: ProxySBC | None
    pit: xr.DataTree
    verdict: pd.DataFrame
    elements: pd.DataFrame
    fits: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every ranked variable passed (no calibration failure detected)."""
        return bool(self.verdict["passed"].all())


def _extreme_shares(sbc: ProxySBC) -> tuple[np.ndarray, np.ndarray]:
    """Per simulation, the share of ranks at 0 or L (all elements; capability only)."""
    ranks = sbc.simulations["prior_sbc"].to_dataset()
    n = sbc.n_rank_draws

    def extreme(da: xr.DataArray) -> np.ndarray:
        r = da.values[0].reshape(da.sizes["draw"], -1)
        return (r == 0) | (r == n)

    every = np.concatenate([extreme(ranks[name]) for name in ranks.data_vars], axis=1)
    return every.mean(axis=1), extreme(ranks["capability"]).mean(axis=1)


def pit_values(ranks: xr.DataTree, reference: xr.Dataset, *, n_rank_draws: int) -> xr.DataTree:
    """Turn simuk's ranks into PIT values labelled with the reference's dimensions.

    Parameters
    ----------
    ranks : xarray.DataTree
        simuk's output (``prior_sbc`` group; dims chain, draw, ``<var>_dim_<i>``).
    reference : xarray.Dataset
        The true values, one per simulation along the first dimension (simuk's
        ``ref_params``, or ``sbc_reference.nc`` as the script writes it).
    n_rank_draws : int
        ``L``, the posterior draws each truth was ranked among.

    Returns
    -------
    xarray.DataTree
        ``prior_sbc`` group of PIT values ``(rank + 1/2) / (L + 1)``, length-1 axes dropped.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ranks = xr.DataTree.from_dict({"prior_sbc": xr.Dataset(
    ...     {"mu": (("chain", "draw", "mu_dim_0"), np.array([[[0, 9], [4, 5]]]))})})
    >>> ref = xr.Dataset({"mu": (("sample", "proxy"), np.zeros((2, 2)))},
    ...                  coords={"proxy": ["a", "b"]})
    >>> pit_values(ranks, ref, n_rank_draws=9)["prior_sbc"]["mu"].sel(proxy="b").values
    array([[0.95, 0.55]])
    """
    ds = ranks["prior_sbc"].to_dataset()
    out = {}
    for name in ds.data_vars:
        da = ds[name]
        ref = reference[name]
        dims = list(ref.dims[1:])
        extra = [d for d in da.dims if d not in _SAMPLE]
        da = da.rename(dict(zip(extra, dims, strict=True)))
        coords = {d: ref[d].values for d in dims if d in ref.coords}
        pit = ((da + 0.5) / (n_rank_draws + 1)).assign_coords(coords)
        # one factor: drop the length-1 factor axis (and any other of length one)
        out[name] = pit.squeeze([d for d in dims if pit.sizes[d] == 1], drop=True)
    return xr.DataTree.from_dict({"prior_sbc": xr.Dataset(out)})


def _label(name: str, da: xr.DataArray, index: tuple[int, ...]) -> str:
    dims = [d for d in da.dims if d not in _SAMPLE]
    parts = [
        str(da[d].values[i]) if d in da.coords else str(i)
        for d, i in zip(dims, index, strict=True)
        if da.sizes[d] > 1
    ]
    return f"{name}[{', '.join(parts)}]" if parts else name


def sbc_verdict(pit: xr.DataTree, *, alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test each ranked variable's PIT values for uniformity.

    Parameters
    ----------
    pit : xarray.DataTree
        ``prior_sbc`` group of PIT values with dims (chain, draw, ...): one chain, one
        "draw" per simulation.
    alpha : float, default 0.05
        Family-wise level over all variables.

    Returns
    -------
    verdict : pandas.DataFrame
        Per variable: ``elements``, ``worst`` (the element with the smallest p-value),
        ``p_min`` (its ``pot_c`` p-value), ``p_variable`` (Bonferroni over elements),
        ``p_adjusted`` (Holm over variables), ``passed`` (``p_adjusted >= alpha``),
        ``mean_pit`` (0.5 when unbiased; above 0.5, the truth tends to lie above the
        posterior) and ``tail_share`` (share of PIT values below 0.05 or above 0.95; 0.10
        when calibrated, more when posteriors are too narrow).
    elements : pandas.DataFrame
        Per element: ``variable``, ``element``, ``p_value``, ``mean_pit``, ``tail_share``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> ds = xr.Dataset({
    ...     "ok": (("chain", "draw"), rng.uniform(size=(1, 200))),
    ...     "biased": (("chain", "draw"), rng.uniform(size=(1, 200)) ** 3),
    ... })
    >>> verdict, _ = sbc_verdict(xr.DataTree.from_dict({"prior_sbc": ds}))
    >>> verdict.set_index("variable")["passed"].to_dict()
    {'ok': True, 'biased': False}
    """
    if not 0.0 < alpha < 1.0:
        raise CalibrationError(f"alpha must lie in (0, 1), got {alpha!r}.", hint="e.g. alpha=0.05.")
    import arviz_stats  # noqa: F401  (registers the .azstats accessor)

    ds = pit["prior_sbc"].to_dataset()
    rows, element_rows = [], []
    for name in ds.data_vars:
        da = ds[name].transpose(*_SAMPLE, ...)
        p = np.atleast_1d(
            da.azstats.uniformity_test(dim=list(_SAMPLE), method="pot_c")[0].values
        ).ravel()
        values = da.values.reshape(-1, p.size)
        mean_pit = values.mean(axis=0)
        tails = ((values < 0.05) | (values > 0.95)).mean(axis=0)
        shape = da.shape[2:]
        for j in range(p.size):
            element_rows.append(
                {
                    "variable": name,
                    "element": _label(name, da, np.unravel_index(j, shape) if shape else ()),
                    "p_value": float(p[j]),
                    "mean_pit": float(mean_pit[j]),
                    "tail_share": float(tails[j]),
                }
            )
        worst = int(np.argmin(p))
        rows.append(
            {
                "variable": name,
                "elements": int(p.size),
                "worst": _label(name, da, np.unravel_index(worst, shape) if shape else ()),
                "p_min": float(p[worst]),
                "p_variable": float(min(1.0, p.size * p[worst])),
                "mean_pit": float(values.mean()),
                "tail_share": float(((values < 0.05) | (values > 0.95)).mean()),
            }
        )
    verdict = pd.DataFrame(rows)
    verdict["p_adjusted"] = _holm(verdict["p_variable"].to_numpy())
    verdict["passed"] = verdict["p_adjusted"] >= alpha
    cols = ["variable", "elements", "worst", "p_min", "p_variable", "p_adjusted", "passed"]
    verdict = verdict[[*cols, "mean_pit", "tail_share"]]
    return verdict, pd.DataFrame(element_rows)


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values."""
    m = len(p)
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def run_sbc(
    *,
    num_simulations: int,
    table_kwargs: Mapping[str, Any] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    thin: int = 10,
    seed: int = 0,
    priors: Mapping[str, float] | None = None,
    target_accept: float = 0.9,
    alpha: float = 0.05,
    progress_bar: bool = False,
    allow_partial: bool = False,
) -> SBCResult:
    """Run simulation-based calibration of the one-factor proxy model.

    Parameters
    ----------
    num_simulations : int
        Simulated tables (>= 200 for a verdict worth reporting).
    table_kwargs : mapping, optional
        Arguments of :func:`bayesproxy.datasets.simulate` for the template table, over
        :data:`DEFAULT_TABLE`. Only its shapes, mask, compute, standard errors and target
        item counts matter; its scores are replaced by each simulation's.
    draws, tune, chains : int, default 1000, 1000, 2
        ``tune`` and ``target_accept`` are :class:`~bayesproxy.model.ProxyForecaster`'s.
    thin : int, default 10
        Ranks use every ``thin``-th draw of each chain (``chains * draws // thin`` in all).
    seed : int, default 0
    priors : mapping, optional
        Prior overrides.
    target_accept : float, default 0.9
    alpha : float, default 0.05
        Family-wise level of the verdict.
    progress_bar : bool, default False
    allow_partial : bool, default False
        When a fit fails, summarise the simulations finished before it instead of raising.

    Returns
    -------
    SBCResult

    Raises
    ------
    CalibrationError
        On non-positive sizes or a ``thin`` above ``draws``, or when a simulation failed
        (unless ``allow_partial``).

    Examples
    --------
    >>> run_sbc(num_simulations=1)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    CalibrationError: num_simulations must be an integer >= 2, got 1.
    """
    _check_settings(num_simulations=num_simulations, draws=draws, tune=tune, chains=chains)
    kwargs = {**DEFAULT_TABLE, **dict(table_kwargs or {})}
    table = datasets.simulate(**kwargs).table
    design = build_design(table, target=table.target or "target")
    sbc = ProxySBC(
        design,
        priors=priors,
        num_simulations=num_simulations,
        draws=draws,
        tune=tune,
        chains=chains,
        thin=thin,
        target_accept=target_accept,
        seed=seed,
        progress_bar=progress_bar,
    )
    sbc.run_simulations()
    return sbc.result(alpha=alpha, table=kwargs, allow_partial=allow_partial)


def plot_sbc(
    result: SBCResult,
    *,
    var_names: Sequence[str] | None = None,
    title: str | None = None,
    col_wrap: int = 5,
) -> Any:
    """ECDF-PIT difference plot of the ranks, one panel per variable, elements overlaid.

    Each black line is one element's ECDF of PIT values minus the uniform CDF (ArviZ's
    ``plot_ecdf_pit``); the gray band is the simultaneous 95% envelope of one such line
    under uniformity, and open circles mark the PIT values that contribute most to an
    element's departure from uniformity (``pot_c`` test at the verdict's level, unadjusted
    for the number of elements). Black, gray and open markers read in grayscale.

    Parameters
    ----------
    result : SBCResult
    var_names : sequence of str, optional
        Variables to draw (default all ranked).
    title : str, optional
        Figure title (default: simulations, rank draws and the overall verdict).
    col_wrap : int, default 5

    Returns
    -------
    matplotlib.figure.Figure
    """
    from arviz_plots import plot_ecdf_pit
    from arviz_stats.ecdf_utils import ecdf_pit

    ds = result.pit["prior_sbc"].to_dataset()
    if var_names is not None:
        ds = ds[list(var_names)]
    overlay = sorted({d for name in ds.data_vars for d in ds[name].dims} - set(_SAMPLE))
    rows = -(-len(ds.data_vars) // col_wrap)
    alpha = float(result.settings.get("alpha", 0.05))
    pc = plot_ecdf_pit(
        xr.DataTree.from_dict({"prior_sbc": ds}),
        group="prior_sbc",
        sample_dims=list(_SAMPLE),
        method="pot_c",
        envelope_prob=1.0 - alpha,
        backend="matplotlib",
        cols=["__variable__"],
        col_wrap=col_wrap,
        # one "overlay" aesthetic per dimension: a mapping applies only to variables that
        # have all of its dimensions
        aes={f"overlay_{dim}": [dim] for dim in overlay},
        aes_by_visuals={
            "ecdf_lines": [f"overlay_{dim}" for dim in overlay],
            "suspicious_points": [f"overlay_{dim}" for dim in overlay],
        },
        visuals={
            "ecdf_lines": {"color": "black", "alpha": 0.6, "linewidth": 0.9},
            "suspicious_points": {
                "color": "black",
                "marker": "o",
                "facecolors": "none",
                "size": 14,
            },
            "p_value_text": False,
            "ylabel": {"text": "ECDF − uniform"},
        },
        figure_kwargs={"figsize": (2.9 * col_wrap, 2.2 * rows + 0.8), "sharey": False},
    )
    fig = pc.get_viz("figure")
    n = ds.sizes["draw"] * ds.sizes["chain"]
    x, _, lower, upper = ecdf_pit(np.linspace(0.0, 1.0, n), 1.0 - alpha, n_simulations=1000)
    for ax in fig.axes:
        if ax.get_visible() and ax.has_data():
            ax.fill_between(x, lower - x, upper - x, step="post", color="0.82", zorder=0)
    s = result.settings
    if title is None:
        failed = result.verdict.loc[~result.verdict["passed"], "variable"].tolist()
        verdict = "no variable failed" if not failed else "failed: " + ", ".join(failed)
        title = (
            f"Simulation-based calibration of the proxy model: {s['num_simulations']} "
            f"simulations, ranks among {s['rank_draws']} posterior draws\n"
            f"{verdict} (pot_c tests, Holm over variables, α = {alpha:g})"
        )
    fig.suptitle(title, fontsize="medium")
    fig.set_layout_engine("constrained")
    return fig
