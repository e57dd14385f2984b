"""Figures and tables of the source-method cards (models/proxy_selection.md, weighted_ensemble.md).

Fits the proxy-task selection method and the alignment / stability ensemble on the
ObsScaling base models below 8.4e22 training FLOPs (the source paper's cutoff), with the
eight standard benchmarks as candidate proxies, and writes

* ``proxy_selection_relevance.png``: the relevance heat map (seed 1, Figure 1);
* ``methods_tables.md``: the relevance table and the ensemble's weight table.

ObsScaling has one evaluation per model, so robustness is unknown there. The OLMo-2 ladder
has a real second run (``seed=rerun``) of each size at 1x Chinchilla: on those runs'
checkpoints (orig and rerun as two replicates) the script also draws the relevance and
robustness heat map for a cloze-format target, ``proxy_selection_relevance_olmo.png``.

Usage::

    python examples/methods_figures.py DATA_DIR --out models/figures [--target gsm8k_cot]
        [--olmo-target arc_challenge_rc]

DATA_DIR holds ``obsscaling_base.csv.gz`` and ``olmo_ladder_long.csv.gz``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

import bayesproxy
from bayesproxy.methods import get_method
from bayesproxy.plots.relevance import plot_relevance_heatmap

STANDARD = [
    "mmlu",
    "arc_challenge",
    "hellaswag",
    "winogrande",
    "truthfulqa",
    "gsm8k",
    "xwinograd",
    "humaneval",
]
CUTOFF = 8.4e22


def obsscaling(data_dir: Path, target: str) -> bayesproxy.BenchmarkTable:
    """Standard benchmarks and one target, models below the compute cutoff."""
    df = pd.read_csv(data_dir / "obsscaling_base.csv.gz")
    std = df[(df["task_group"] == "standard") & df["task"].isin(STANDARD)]
    if target == "gsm8k_cot":
        tgt = df[(df["task"] == target) & (df["metric"] == "exact_match:strict-match")]
    else:
        tgt = df[(df["task"] == target) & (df["task_group"] == "emergent_bigbench")]
        tgt = tgt[tgt["metric"].isin(["acc", "exact_match"])]
    long = pd.concat([std, tgt], ignore_index=True)
    long = long[long["flops"] < CUTOFF]
    columns = ["model", "family", "params", "tokens", "flops", "task", "score", "stderr"]
    long = long[[*columns, "is_fraction", "higher_is_better"]].dropna(subset=["score"])
    return bayesproxy.read_table(long, target=target)


def olmo_replicates(data_dir: Path, target: str) -> bayesproxy.BenchmarkTable:
    """OLMo-2 ladder, 1x Chinchilla runs of five sizes, the original and the rerun as replicates."""
    df = pd.read_csv(data_dir / "olmo_ladder_long.csv.gz")
    df = df[df["run_id"].str.startswith("ladder/") & (df["train_variant"] == "1xC")]
    df = df[(df["step"] > 0) & (df["prompt_format"] == "rc")]
    df = df[df["metric"].isin(["acc", "acc_len_norm", "bpb"])]
    df = df.assign(task=df["task"] + np.where(df["metric"] == "bpb", "_bpb", "_rc"))
    keys = ["model", "train_variant", "seed", "step", "task"]
    rest = ["family", "params", "tokens", "flops", "stderr", "is_fraction", "higher_is_better"]
    # the source repeats a few evaluations with slightly different numbers: average them
    long = df.groupby(keys, as_index=False).agg({c: "first" for c in rest} | {"score": "mean"})
    return bayesproxy.read_table(
        long, target=target, run_columns=["model", "train_variant"], replicate_columns=["seed"]
    )


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table (no extra dependency)."""
    frame = frame.reset_index()
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in frame.values]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("models/figures"))
    parser.add_argument("--target", default="gsm8k_cot")
    parser.add_argument("--olmo-target", default="arc_challenge_rc")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table = obsscaling(args.data_dir, args.target)

    selection = get_method("proxy-selection", target=args.target, n_boot=0).fit(table)
    relevance = selection.relevance_table()
    columns = ["pearson", "spearman", "kendall"]
    if relevance["robustness"].notna().any():  # unknown without replicates or stderr
        columns.append("robustness")
    fig = plot_relevance_heatmap(
        relevance,
        columns=columns,
        title=f"Relevance to {args.target} (ObsScaling, < 8.4e22 FLOPs)",
    )
    fig.savefig(args.out / "proxy_selection_relevance.png", dpi=150, bbox_inches="tight")

    ensemble = get_method("weighted-ensemble", target=args.target, n_boot=0).fit(table)
    weights = ensemble.weight_table()
    n_units = int(table.target_observed.sum())
    text = [
        f"Target `{args.target}`, {n_units} ObsScaling models below 8.4e22 FLOPs; "
        "candidates: the eight standard benchmarks.",
        "",
        "### Proxy-task selection: relevance and robustness",
        "",
        markdown(relevance),
        "",
        "### Weighted ensemble: alignment, stability, weight",
        "",
        markdown(weights),
        "",
    ]
    olmo = olmo_replicates(args.data_dir, args.olmo_target)
    olmo_fit = get_method("proxy-selection", target=args.olmo_target, n_boot=0).fit(olmo)
    olmo_relevance = olmo_fit.relevance_table()
    fig = plot_relevance_heatmap(
        olmo_relevance,
        columns=["pearson", "spearman", "kendall", "robustness"],
        title=f"Relevance to {args.olmo_target} (OLMo-2 ladder 1xC, original + rerun)",
    )
    fig.savefig(args.out / "proxy_selection_relevance_olmo.png", dpi=150, bbox_inches="tight")
    n_both = int((olmo.dataset["score"].notnull().sum("replicate") == 2).any("task").sum())
    text += [
        f"### OLMo-2 ladder: relevance and robustness for `{args.olmo_target}`",
        "",
        f"{olmo.n_units} checkpoints of the five 1xC ladder runs, {n_both} with both the "
        "original run and the rerun evaluated (the replicates robustness is measured on).",
        "",
        markdown(olmo_relevance),
        "",
    ]
    (args.out / "methods_tables.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
