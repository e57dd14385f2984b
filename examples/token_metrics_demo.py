"""Token metrics rank checkpoints while the task they forecast is still at chance.

A bigram model is trained on a synthetic language whose task (the answer after '=' is the
sum of the sentence's word ids modulo 4) needs a multi-step rule; checkpoints at several
steps are teacher-forced over held-out expert solutions. The table shows task accuracy
(at chance throughout) next to token metrics that order the checkpoints by training.

    python examples/token_metrics_demo.py [--figure models/figures/token_metrics_ranking.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from bayesproxy.tokens.demo import ranking_demo

SHOWN = [
    "tokens.cross_entropy.uniform",
    "tokens.top1.uniform",
    "tokens.top5.inverse_frequency",
    "tokens.rank.uniform",
    "tokens.entropy.uniform",
    "tokens.margin.uniform",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", type=Path, help="also save a figure to this PNG path")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    table, ranking = ranking_demo(seed=args.seed)
    pd.set_option("display.width", 200)
    pd.set_option("display.float_format", "{:.4f}".format)
    short = {name: name.removeprefix("tokens.") for name in SHOWN}
    print("Checkpoints (task chance = 0.25, 400 held-out questions):")
    print(table[["step", "task_accuracy", *SHOWN]].rename(columns=short).to_string(index=False))
    print("\nSpearman with training step (+1 = orders checkpoints by training):")
    print(ranking.loc[["task_accuracy", *SHOWN]].rename(index=short).to_string())
    ranked = ranking["spearman"].drop("task_accuracy").dropna()
    print(
        f"\n{(ranked >= 0.9).sum()} of {ranked.size} token metrics reach Spearman >= 0.9; "
        f"task accuracy: {ranking.loc['task_accuracy', 'spearman']:+.2f}"
    )

    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), constrained_layout=True)
        axes[0].plot(table["step"], table["task_accuracy"], "o-", label="task accuracy")
        axes[0].axhline(0.25, color="gray", ls="--", label="chance")
        axes[0].set(xscale="log", xlabel="training step", ylabel="accuracy", ylim=(0, 1))
        axes[0].legend(frameon=False)
        for name in ("tokens.top1.uniform", "tokens.top5.inverse_frequency"):
            axes[1].plot(table["step"], table[name], "o-", label=short[name])
        axes[1].set(xscale="log", xlabel="training step", ylabel="token metric")
        axes[1].legend(frameon=False)
        axes[2].plot(table["step"], table["tokens.cross_entropy.uniform"], "o-")
        axes[2].set(xscale="log", xlabel="training step", ylabel="cross-entropy (nats)")
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=120)
        print(f"figure written to {args.figure}")


if __name__ == "__main__":
    main()
