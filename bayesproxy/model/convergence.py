"""The convergence gate run after every fit: R-hat, bulk / tail ESS and divergences.

Examples
--------
>>> import numpy as np, xarray as xr
>>> rng = np.random.default_rng(0)
>>> post = xr.Dataset({"x": (("chain", "draw"), rng.normal(size=(4, 500)))})
>>> stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((4, 500), bool))})
>>> dt = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
>>> report = check_convergence(dt, var_names=["x"])
>>> report.ok
True
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayesproxy.errors import ConvergenceError, ConvergenceWarning
from bayesproxy.model.mcmc_stats import diagnose

__all__ = [
    "RHAT_MAX",
    "ConvergenceReport",
    "check_convergence",
    "enforce",
    "ess_floor",
    "variable_diagnostics",
]

#: Largest acceptable rank-normalised split R-hat.
RHAT_MAX = 1.01


def ess_floor(n_chains: int) -> float:
    """Smallest acceptable bulk / tail ESS: 400, or 100 per chain with fewer than 4 chains.

    Examples
    --------
    >>> ess_floor(4), ess_floor(2)
    (400.0, 200.0)
    """
    return float(min(400, 100 * n_chains))


@dataclass(frozen=True)
class ConvergenceReport:
    """Per-variable diagnostics and the verdict of the gate."""

    table: pd.DataFrame  # one row per variable: rhat, ess_bulk, ess_tail, ok
    divergences: int
    n_draws: int
    ess_min: float

    @property
    def failing(self) -> list[str]:
        """Variables over the R-hat limit or under the ESS floor."""
        return self.table.index[~self.table["ok"]].tolist()

    @property
    def ok(self) -> bool:
        """Whether the fit passes the gate."""
        return not self.failing and self.divergences == 0

    def message(self) -> str:
        """Describe what failed and how to fix it (empty when ok)."""
        if self.ok:
            return ""
        parts = []
        if self.failing:
            worst = self.table.loc[self.failing]
            shown = ", ".join(
                f"{name} (R-hat {row.rhat:.3f}, ESS bulk {row.ess_bulk:.0f}, "
                f"tail {row.ess_tail:.0f})"
                for name, row in worst.head(5).iterrows()
            )
            more = f" and {len(self.failing) - 5} more" if len(self.failing) > 5 else ""
            parts.append(
                f"{len(self.failing)} variable(s) fail R-hat <= {RHAT_MAX} or ESS >= "
                f"{self.ess_min:.0f}: {shown}{more}"
            )
        if self.divergences:
            parts.append(f"{self.divergences} divergent transition(s) of {self.n_draws}")
        return (
            "MCMC did not converge: "
            + "; ".join(parts)
            + ".\nHint: fit again with more tuning (tune=2000), more draws (draws=4000), a "
            "higher target_accept (0.95), or fewer factors (n_factors=1)."
        )


def variable_diagnostics(posterior: xr.Dataset) -> pd.DataFrame:
    """Worst R-hat and smallest bulk / tail ESS of each variable over its elements.

    Every element of every variable goes through
    :func:`~bayesproxy.model.mcmc_stats.diagnose` in one array (vectorised over elements,
    the same figures as ArviZ's; tail ESS at the 5% and 95% quantiles).

    Parameters
    ----------
    posterior : xarray.Dataset
        Variables with ``chain`` and ``draw`` dimensions.

    Returns
    -------
    pandas.DataFrame
        Indexed by variable, columns ``rhat``, ``ess_bulk``, ``ess_tail`` (NaN where no
        element has a finite value, e.g. a constant variable's R-hat).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = np.random.default_rng(0).normal(size=(4, 500))
    >>> table = variable_diagnostics(xr.Dataset({"x": (("chain", "draw"), x)}))
    >>> bool(table.loc["x", "rhat"] < 1.01)
    True
    """
    names = [str(name) for name in posterior.data_vars]
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    blocks = [
        np.asarray(posterior[name].transpose("chain", "draw", ...).values, float).reshape(
            chains, draws, -1
        )
        for name in names
    ]
    # constant elements (e.g. a zero-sum axis) give 0/0 inside the estimators: NaN, no noise.
    # np.errstate only (per thread): warnings.catch_warnings would silence every thread's
    # warnings, and the fit runs this gate beside its other work
    with np.errstate(all="ignore"):
        stats = diagnose(np.concatenate(blocks, axis=2)) if blocks else (np.zeros(0),) * 3
    edges = np.cumsum([0] + [b.shape[2] for b in blocks])
    worst = {"rhat": np.nanmax, "ess_bulk": np.nanmin, "ess_tail": np.nanmin}
    rows = {}
    for name, lo, hi in zip(names, edges[:-1], edges[1:], strict=True):
        rows[name] = {}
        for (col, reduce), values in zip(worst.items(), stats, strict=True):
            part = values[lo:hi]
            rows[name][col] = reduce(part) if np.isfinite(part).any() else np.nan
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(worst))
    return table.astype(float)


def check_convergence(dt: xr.DataTree, *, var_names: Sequence[str]) -> ConvergenceReport:
    """Compute R-hat, bulk / tail ESS per variable (worst element) and count divergences.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit with ``posterior`` and ``sample_stats`` groups.
    var_names : sequence of str
        The variables to check (the model's free parameters).

    Returns
    -------
    ConvergenceReport
    """
    post = dt["posterior"].to_dataset()[list(var_names)]
    table = variable_diagnostics(post)
    n_chains = int(post.sizes["chain"])
    floor = ess_floor(n_chains)
    table["ok"] = (
        (table["rhat"].fillna(1.0) <= RHAT_MAX)
        & (table["ess_bulk"].fillna(np.inf) >= floor)
        & (table["ess_tail"].fillna(np.inf) >= floor)
    )
    table.index.name = "variable"
    divergences = 0
    if "sample_stats" in dt.children and "diverging" in dt["sample_stats"].dataset:
        divergences = int(np.asarray(dt["sample_stats"]["diverging"].values).sum())
    return ConvergenceReport(
        table=table,
        divergences=divergences,
        n_draws=int(post.sizes["chain"] * post.sizes["draw"]),
        ess_min=floor,
    )


def enforce(report: ConvergenceReport, *, strict: bool = False) -> None:
    """Warn (or, with ``strict``, raise) when the report fails the gate.

    Raises
    ------
    ConvergenceError
        With ``strict=True`` on a failing report.

    Examples
    --------
    >>> import pandas as pd
    >>> ok = ConvergenceReport(pd.DataFrame({"ok": [True]}), divergences=0, n_draws=1, ess_min=1)
    >>> enforce(ok, strict=True)
    """
    if report.ok:
        return
    if strict:
        raise ConvergenceError(report.message())
    warnings.warn(report.message(), ConvergenceWarning, stacklevel=3)
