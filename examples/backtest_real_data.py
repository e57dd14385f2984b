"""Backtest every forecaster on the real benchmark tables and write Markdown result tables.

Settings (as in the source papers):

* ``obsscaling``: ObsScaling base models; proxies are the 8 standard benchmarks; targets are
  the emergent BIG-bench tasks and GSM8K chain-of-thought; splits are the 8.4e22 FLOPs
  cutoff (Llama-2-7B) and leave-one-family-out.
* ``olmo-mmlu``: OLMo-2 7B and 13B checkpoints; target letter-format (MC) MMLU, which sits
  at chance until ~55k steps and then jumps; proxies are cloze-format (RC) accuracies,
  bits-per-byte and validation losses; split early → late within each run.
* ``olmo-ladder``: the OLMo-2 ladder (190M-3.2B, all token budgets) → the 7B and 13B runs
  (split by parameter count); targets are cloze-format task accuracies, with bits-per-byte
  and losses as proxies (the ladder's own compute → loss → accuracy chain is one method).

Usage::

    python examples/backtest_real_data.py DATA_DIR --out backtest-results [--quick]
        [--methods compute-sigmoid,pca-sigmoid] [--settings obsscaling,olmo-mmlu]
        [--workers 2]

DATA_DIR holds ``obsscaling_base.csv.gz`` and ``olmo_ladder_long.csv.gz``. Writes
``results_<setting>.csv`` (every fold and metric), ``summary_<setting>.csv`` and
``backtests.md`` (one Markdown table per setting) into --out.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from bayesproxy.backtest import BacktestResult, EarlyToLate, MethodSpec, backtest
from bayesproxy.backtest.splits import ComputeCutoff, LeaveOneFamilyOut, SmallToLarge
from bayesproxy.methods.base import available_methods
from bayesproxy.table import BenchmarkTable

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
OBS_TARGETS = [
    "word_unscrambling",
    "arithmetic_2dm",
    "arithmetic_3da",
    "arithmetic_3ds",
    "arithmetic_2da",
    "parsinlu_qa",
    "gsm8k_cot",
]
RC_TASKS = [
    "arc_challenge",
    "arc_easy",
    "boolq",
    "csqa",
    "hellaswag",
    "openbookqa",
    "piqa",
    "socialiqa",
    "winogrande",
    "mmlu_humanities",
    "mmlu_other",
    "mmlu_social_sciences",
    "mmlu_stem",
]
LADDER_TARGETS = ["hellaswag_rc", "arc_challenge_rc", "mmlu_stem_rc", "piqa_rc"]
UNIT_COLUMNS = ["model", "run", "step", "family", "params", "tokens", "flops"]
SUMMARY_METRICS = [
    "mae",
    "rmse",
    "pooled_spearman",
    "spearman",
    "kendall",
    "pairwise_accuracy",
    "coverage_50",
    "coverage_90",
    "width_90",
    "crps",
    "elpd",
]


# ---------------------------------------------------------------------- tables
def _frame(rows: pd.DataFrame, task: pd.Series) -> pd.DataFrame:
    out = rows[[c for c in ("model", "family", "params", "step", "tokens", "flops") if c in rows]]
    out = out.assign(
        run=rows["run_id"],
        task=task.to_numpy(),
        score=rows["score"],
        stderr=rows["stderr"],
        is_fraction=rows["is_fraction"],
        higher_is_better=rows["higher_is_better"],
    )
    return out.dropna(subset=["score"])


def obsscaling_table(data_dir: Path) -> BenchmarkTable:
    """ObsScaling: the 8 standard benchmarks and the emergent targets, one unit per model."""
    df = pd.read_csv(data_dir / "obsscaling_base.csv.gz")
    std = df[(df["task_group"] == "standard") & df["task"].isin(STANDARD)]
    emergent = df[
        (df["task_group"] == "emergent_bigbench")
        & df["task"].isin(OBS_TARGETS)
        & df["metric"].isin(["acc", "exact_match"])
    ]
    cot = df[(df["task"] == "gsm8k_cot") & (df["metric"] == "exact_match:strict-match")]
    parts = [_frame(std, std["task"]), _frame(emergent, emergent["task"]), _frame(cot, cot["task"])]
    chance = _chance(data_dir, "obsscaling")
    long = pd.concat(parts, ignore_index=True)
    return BenchmarkTable.from_dataframe(
        long,
        chance={t: c for t, c in chance.items() if t in set(long["task"])},
        min_target_units=0,
    )


def _chance(data_dir: Path, dataset: str) -> dict[str, float]:
    levels = pd.read_csv(data_dir / "chance_levels.csv")
    levels = levels[(levels["dataset"] == dataset) & levels["subtask"].isna()]
    levels = levels.dropna(subset=["chance"])
    return dict(zip(levels["task"], levels["chance"].astype(float), strict=True))


def _olmo_long(data_dir: Path, runs: list[str] | None, *, keep_steps: int | None) -> pd.DataFrame:
    df = pd.read_csv(data_dir / "olmo_ladder_long.csv.gz")
    df = df[df["step"].notna() & (df["step"] > 0)]  # step 0: no compute, log(0)
    if runs is not None:
        df = df[df["run_id"].isin(runs)]
    if keep_steps:
        # log-spaced checkpoints per run: the ladder has up to 200 per run
        keep = []
        for _, steps in df.groupby("run_id")["step"]:
            s = np.sort(steps.unique())
            idx = np.unique(np.round(np.geomspace(1, len(s), keep_steps)).astype(int) - 1)
            keep.append(pd.Series(s[idx]).rename("step").to_frame().assign(run_id=_))
        df = df.merge(pd.concat(keep), on=["run_id", "step"])
    return df


def _olmo_tasks(df: pd.DataFrame) -> pd.DataFrame:
    rc_acc = df[(df["prompt_format"] == "rc") & df["metric"].isin(["acc", "acc_len_norm"])]
    rc_bpb = df[(df["prompt_format"] == "rc") & (df["metric"] == "bpb")]
    mc = df[(df["prompt_format"] == "mc") & df["metric"].isin(["acc", "acc_len_norm"])]
    loss = df[df["task"] == "lm_loss"]
    sub = loss["subtask"].fillna("all").astype(str)
    parts = [
        _frame(rc_acc, rc_acc["task"] + "_rc"),
        _frame(rc_bpb, rc_bpb["task"] + "_bpb"),
        _frame(mc, mc["task"] + "_mc"),
        _frame(loss, "loss_" + sub),
    ]
    long = pd.concat(parts, ignore_index=True)
    # one value per (run, step, task): the source repeats some evaluations
    return long.groupby(["run", "step", "task"], as_index=False).agg(
        {c: "first" for c in long.columns if c not in {"run", "step", "task", "score"}}
        | {"score": "mean"}
    )


def olmo_mmlu_table(data_dir: Path, *, quick: bool) -> BenchmarkTable:
    """OLMo-2 7B / 13B checkpoints with letter-format MMLU as target (mean of 4 subjects)."""
    df = _olmo_long(data_dir, ["peteish7", "peteish13"], keep_steps=30 if quick else None)
    long = _olmo_tasks(df)
    mc = long[long["task"].str.startswith("mmlu_") & long["task"].str.endswith("_mc")]
    target = (
        mc.groupby(["run", "step"], as_index=False)
        .agg(
            {c: "first" for c in mc.columns if c not in {"run", "step", "score", "stderr"}}
            | {"score": "mean"}
        )
        .assign(task="mmlu_mc", stderr=np.nan)
    )
    long = long[~long["task"].str.endswith("_mc")]
    long = pd.concat([long, target], ignore_index=True)
    chance = _olmo_rc_chance(data_dir, long) | {"mmlu_mc": 0.25}
    return BenchmarkTable.from_dataframe(long, chance=chance, min_target_units=0)


def _olmo_rc_chance(data_dir: Path, long: pd.DataFrame) -> dict[str, float]:
    """Cloze-format accuracies keep their task's chance level (4-way MC: 0.25, not 0)."""
    levels = _chance(data_dir, "olmo_ladder")
    present = set(long["task"])
    return {f"{task}_rc": c for task, c in levels.items() if f"{task}_rc" in present}


def olmo_ladder_table(data_dir: Path, *, quick: bool) -> BenchmarkTable:
    """OLMo-2 ladder runs and the 7B / 13B runs, log-spaced checkpoints."""
    df = _olmo_long(data_dir, None, keep_steps=8 if quick else 16)
    df = df[df["run_id"].str.startswith("ladder/") | df["run_id"].isin(["peteish7", "peteish13"])]
    long = _olmo_tasks(df)
    long = long[~long["task"].str.endswith("_mc")]  # the ladder has no letter-format evals
    return BenchmarkTable.from_dataframe(
        long, chance=_olmo_rc_chance(data_dir, long), min_target_units=0
    )


# ---------------------------------------------------------------------- methods
#: Factor counts of the Bayesian model to run (``--bayes-factors``).
BAYES_FACTORS: list[int] = [1]


def method_specs(names: list[str], *, quick: bool, loss_task: str | None) -> list[MethodSpec]:
    """The forecasters of one setting, with the options the setting needs."""
    n_boot = 50 if quick else 200
    specs = []
    for name in names:
        if name == "proxy-bayes":
            # full MCMC settings even in --quick: a fit compiles once per table shape and
            # samples in seconds, and an unconverged fit would say nothing about the model
            draws, tune = 1000, 1000
            for factors in BAYES_FACTORS:
                specs.append(
                    MethodSpec(
                        name,
                        options={"n_factors": factors},
                        fit_options={
                            "draws": draws,
                            "tune": tune,
                            "chains": 2,
                            "random_seed": 0,
                            "progressbar": False,
                        },
                        label=name if factors == 1 else f"{name}:{factors}f",
                    )
                )
        elif name == "loss-accuracy":
            if loss_task is None:
                continue  # needs a loss-like task: none in this setting
            specs.append(MethodSpec(name, options={"loss_task": loss_task, "n_boot": n_boot}))
        elif name == "compute-sigmoid":
            specs.append(MethodSpec(name, options={"n_boot": n_boot}))
            specs.append(
                MethodSpec(
                    name,
                    options={"n_boot": n_boot, "family_intercepts": True},
                    label="compute-sigmoid+family",
                )
            )
        else:
            specs.append(MethodSpec(name, options={"n_boot": n_boot}))
    return specs


# ---------------------------------------------------------------------- running
def run_setting(
    name: str,
    table: BenchmarkTable,
    *,
    targets: list[str],
    splits: list,
    methods: list[str],
    quick: bool,
    executor,
    loss_tasks: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Backtest every target of one setting; return one summary row per method/split/target."""
    rows = []
    for target in targets:
        proxies = [t for t in table.tasks if t not in set(targets) or t == target]
        sub = table.select(tasks=proxies).with_target(target, min_target_units=0)
        specs = method_specs(methods, quick=quick, loss_task=(loss_tasks or {}).get(target))
        start = time.perf_counter()
        result = backtest(
            sub,
            target=target,
            methods=specs,
            splits=splits,
            executor=executor,
            n_samples=400 if quick else 1000,
        )
        seconds = time.perf_counter() - start
        _save(result, name, target)
        pooled = result.pooled()[["method", "split", "spearman"]]
        summary = result.summary().assign(target=target)
        summary = summary.merge(
            pooled.rename(columns={"spearman": "pooled_spearman"}), on=["method", "split"]
        )
        errors = result.errors.groupby(["method", "split"]).size().rename("failed_folds")
        summary = summary.merge(errors.reset_index(), on=["method", "split"], how="left")
        summary["failed_folds"] = summary["failed_folds"].fillna(0).astype(int)
        rows.append(summary)
        print(
            f"[{name}] {target}: {seconds:.0f} s, {len(result.errors)} failed job(s)",
            file=sys.stderr,
        )
    return pd.concat(rows, ignore_index=True)


_OUT: Path = Path(".")


def _save(result: BacktestResult, setting: str, target: str) -> None:
    stem = f"{setting}_{target}"
    result.results.to_csv(_OUT / f"results_{stem}.csv", index=False)
    result.predictions.to_csv(_OUT / f"predictions_{stem}.csv", index=False)


def markdown(summary: pd.DataFrame, *, title: str) -> str:
    """One Markdown table: rows method x split, averaged over the setting's targets."""
    cols = [c for c in SUMMARY_METRICS if c in summary]
    summary = summary.assign(
        split=pd.Categorical(summary["split"], categories=list(dict.fromkeys(summary["split"]))),
        method=pd.Categorical(summary["method"], categories=list(dict.fromkeys(summary["method"]))),
    )
    groups = summary.groupby(["split", "method"], observed=True)
    per = groups[cols].mean()
    failed = groups["failed_folds"].sum()
    n_targets = summary["target"].nunique()
    per = per.assign(failed_folds=failed)
    header = "| split | method | " + " | ".join(cols) + " | failed folds |"
    lines = [
        f"### {title}",
        "",
        f"Mean over {n_targets} target(s): {', '.join(summary['target'].unique())}.",
        "",
        header,
        "|" + "---|" * (len(cols) + 3),
    ]
    for (split, method), row in per.iterrows():
        cells = ["" if not np.isfinite(row[c]) else f"{row[c]:.3f}" for c in cols]
        lines.append(
            f"| {split} | {method} | " + " | ".join(cells) + f" | {int(row['failed_folds'])} |"
        )
    best = per["mae"].groupby(level="split").idxmin()
    lines += ["", "Lowest MAE: " + "; ".join(f"{s}: {m[1]}" for s, m in best.dropna().items()), ""]
    return "\n".join(lines)


def _run_one(setting: str, args: argparse.Namespace, methods: list[str], executor) -> str:
    """Build one setting's table, backtest it and return its Markdown section."""
    if setting == "obsscaling":
        table = obsscaling_table(args.data_dir)
        targets = [t for t in (args.targets.split(",") if args.targets else OBS_TARGETS) if t]
        summary = run_setting(
            setting,
            table,
            targets=targets,
            methods=methods,
            quick=args.quick,
            splits=[
                split
                for key, split in (
                    ("cutoff", ComputeCutoff(flops=8.4e22)),
                    ("family", LeaveOneFamilyOut()),
                )
                if key in args.obs_splits.split(",")
            ],
            executor=executor,
        )
        title = TITLES[setting]
    elif setting == "olmo-mmlu":
        table = olmo_mmlu_table(args.data_dir, quick=args.quick)
        summary = run_setting(
            setting,
            table,
            targets=["mmlu_mc"],
            methods=methods,
            quick=args.quick,
            splits=[EarlyToLate(step_fraction=0.1), EarlyToLate(step_fraction=0.3)],
            executor=executor,
            loss_tasks={"mmlu_mc": "mmlu_stem_bpb"},
        )
        title = TITLES[setting]
    elif setting == "olmo-ladder":
        table = olmo_ladder_table(args.data_dir, quick=args.quick)
        summary = run_setting(
            setting,
            table,
            targets=LADDER_TARGETS,
            methods=methods,
            quick=args.quick,
            splits=[SmallToLarge(params=4e9)],
            executor=executor,
            loss_tasks={t: t.removesuffix("_rc") + "_bpb" for t in LADDER_TARGETS},
        )
        title = TITLES[setting]
    else:
        raise SystemExit(f"unknown setting {setting!r}: use obsscaling, olmo-mmlu, olmo-ladder")
    summary.to_csv(args.out / f"summary_{setting}.csv", index=False)
    section = markdown(summary, title=title)
    print(section, flush=True)
    return section


TITLES = {
    "obsscaling": "ObsScaling: emergent BIG-bench and GSM8K-CoT (cutoff 8.4e22 FLOPs; "
    "leave-one-family-out)",
    "olmo-mmlu": "OLMo-2 7B/13B: letter-format MMLU, early → late checkpoints within each run",
    "olmo-ladder": "OLMo-2 ladder (190M–3.2B) → 7B / 13B checkpoints",
}


def _add_pooled(out: Path, setting: str, summary: pd.DataFrame) -> pd.DataFrame:
    """Pooled Spearman from the saved per-unit predictions (summaries of older runs)."""
    from bayesproxy.backtest.metrics import spearman

    rows = []
    for target in summary["target"].unique():
        preds = pd.read_csv(out / f"predictions_{setting}_{target}.csv")
        for (method, split), g in preds.groupby(["method", "split"]):
            rows.append(
                {
                    "target": target,
                    "method": method,
                    "split": split,
                    "pooled_spearman": spearman(g["mean"], g["actual"]),
                }
            )
    return summary.merge(pd.DataFrame(rows), on=["target", "method", "split"], how="left")


def render(out: Path, settings: list[str]) -> None:
    """Write backtests.md from the summary CSVs of earlier runs."""
    sections = []
    for setting in settings:
        path = out / f"summary_{setting}.csv"
        if path.exists():
            summary = pd.read_csv(path)
            if "pooled_spearman" not in summary:
                summary = _add_pooled(out, setting, summary)
            sections.append(markdown(summary, title=TITLES[setting]))
    (out / "backtests.md").write_text("\n".join(sections))
    print("\n".join(sections))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("backtest-results"))
    parser.add_argument("--methods", default=",".join(available_methods()))
    parser.add_argument("--settings", default="obsscaling,olmo-mmlu,olmo-ladder")
    parser.add_argument("--targets", default="", help="Restrict ObsScaling targets.")
    parser.add_argument(
        "--quick", action="store_true", help="Fewer bootstrap refits, draws and checkpoints."
    )
    parser.add_argument(
        "--obs-splits",
        default="cutoff,family",
        help="ObsScaling splits: cutoff (8.4e22 FLOPs), family (leave-one-family-out).",
    )
    parser.add_argument(
        "--bayes-factors",
        default="1",
        help="Factor counts of proxy-bayes to run, e.g. 1,2 (labelled proxy-bayes:2f).",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="Rebuild backtests.md from the summary_*.csv files already in --out.",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        render(args.out, [s.strip() for s in args.settings.split(",") if s.strip()])
        return

    global _OUT
    _OUT = args.out
    BAYES_FACTORS[:] = [int(k) for k in args.bayes_factors.split(",") if k.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    executor = (
        "serial"
        if args.workers == 1
        else ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"))
    )
    sections = [
        f"Command: `python examples/backtest_real_data.py DATA_DIR "
        f"--methods {args.methods} --settings {args.settings}"
        f"{' --targets ' + args.targets if args.targets else ''}"
        f"{' --obs-splits ' + args.obs_splits if args.obs_splits != 'cutoff,family' else ''}"
        f"{' --bayes-factors ' + args.bayes_factors if args.bayes_factors != '1' else ''}"
        f"{' --quick' if args.quick else ''}`",
        "",
    ]
    try:
        for setting in settings:
            sections.append(_run_one(setting, args, methods, executor))
    finally:
        if not isinstance(executor, str):
            executor.shutdown()
    text = "\n".join(sections)
    (args.out / "backtests.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
