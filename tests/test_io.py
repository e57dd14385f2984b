import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesproxy
from bayesproxy.errors import (
    ConstantTaskError,
    DuplicateRowsError,
    EmptyTableError,
    InsufficientTargetError,
    LmEvalFormatError,
    MissingColumnsError,
    MissingValuesError,
    NonNumericScoreError,
    PercentScoresError,
    ScoreRangeError,
    TableError,
    UnknownTaskError,
)
from bayesproxy.io import read_lm_eval, read_table
from bayesproxy.io.lm_eval import lm_eval_records

DATA = Path(__file__).parent / "data"


def long_frame() -> pd.DataFrame:
    models = ["m1", "m2", "m3", "m4"]
    rows = []
    for i, m in enumerate(models):
        rows.append((m, "arc_easy", 0.3 + 0.1 * i))
        rows.append((m, "mmlu", 0.25 + 0.05 * i * i))
        rows.append((m, "lm_loss", 3.5 - 0.3 * i))
    df = pd.DataFrame(rows, columns=["model", "task", "score"])
    df["is_fraction"] = df["task"] != "lm_loss"
    df["higher_is_better"] = df["task"] != "lm_loss"
    df["params"] = df["model"].str[1].astype(float) * 1e8
    return df


# ---------------------------------------------------------------------- readers
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_read_files_equal_dataframe(tmp_path, suffix):
    df = long_frame()
    path = tmp_path / f"table{suffix}"
    if suffix == ".parquet":
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False)
    from_file = read_table(path, target="mmlu")
    from_frame = read_table(df, target="mmlu")
    assert from_file == from_frame
    assert from_file.task_info.loc["lm_loss", "kind"] == "metric"
    assert not from_file.task_info.loc["lm_loss", "higher_is_better"]
    assert from_file.units["params"].tolist() == [1e8, 2e8, 3e8, 4e8]


def test_read_wide_matches_long():
    df = long_frame()
    wide = df.pivot(index="model", columns="task", values="score").reset_index()
    table = read_table(wide, target="mmlu", kinds={"lm_loss": "metric"})
    assert table.tasks == ["arc_easy", "lm_loss", "mmlu"]
    long = read_table(df[["model", "task", "score"]], target="mmlu", kinds={"lm_loss": "metric"})
    assert table == long
    assert bayesproxy.BenchmarkTable.from_wide(wide, kinds={"lm_loss": "metric"}).n_units == 4


def test_missing_cells_kept_not_dropped():
    df = long_frame()
    df = df[~((df.model == "m2") & (df.task == "arc_easy"))]
    table = read_table(df)
    assert table.n_units == 4
    assert np.isnan(table.score.sel(unit="m2", task="arc_easy").item())
    assert table.summary().loc["arc_easy", "missing_share"] == 0.25


def test_task_naming_rule_and_options():
    rows = []
    for m, base in [("a", 0.3), ("b", 0.5), ("c", 0.7)]:
        rows += [
            (m, "arc", "", "acc", "rc", base),
            (m, "arc", "", "bpb", "rc", 2 - base),
            (m, "arc", "", "acc", "mc", base / 2),
            (m, "bbh", "snarks", "acc", "rc", base),
            (m, "hellaswag", "", "acc", "rc", base + 0.1),
        ]
    df = pd.DataFrame(
        rows, columns=["model", "task", "subtask", "metric", "prompt_format", "score"]
    )
    table = read_table(df)
    # qualifiers only where a base name holds several values of them
    assert table.tasks == ["arc:mc:acc", "arc:rc:acc", "arc:rc:bpb", "bbh/snarks", "hellaswag"]
    assert table.task_info.loc["arc:rc:bpb", "kind"] == "metric"
    assert table.chance["bbh/snarks"] == 0.5
    named = read_table(df, task_name="{task}-{prompt_format}-{metric}-{subtask}")
    assert "arc-mc-acc-" in named.tasks
    by_fn = read_table(df, task_name=lambda d: d["task"] + "_" + d["metric"] + d["prompt_format"])
    assert "arc_bpbrc" in by_fn.tasks


def test_units_from_steps_runs_and_replicates():
    rows = []
    for run, model, seed in [("r1", "m-190M", "orig"), ("r1-rerun", "m-190M", "rerun")]:
        for step in (100, 200, 300):
            rows.append((run, model, seed, step, "x", 0.2 + step / 1000 + (seed == "rerun") * 0.01))
    df = pd.DataFrame(rows, columns=["run_id", "model", "seed", "step", "task", "score"])
    table = read_table(df)
    assert table.units.index.tolist()[:2] == ["r1@100", "r1@200"]
    assert table.n_replicates == 2  # seed varies: a replicate axis, half empty here
    merged = read_table(df, run_columns="model")
    assert merged.n_units == 3 and merged.n_replicates == 2
    assert merged.observed.all()
    assert merged.units.index.tolist() == ["m-190M@100", "m-190M@200", "m-190M@300"]


def test_chance_resolution_order():
    df = long_frame()
    df["chance"] = np.where(df.task == "arc_easy", 0.2, np.nan)
    table = read_table(df, chance={"mmlu": 0.3})
    assert table.chance.to_dict() == {"arc_easy": 0.2, "lm_loss": 0.0, "mmlu": 0.3}
    with pytest.raises(UnknownTaskError, match="mmlu"):
        read_table(df, chance={"mmlux": 0.3})
    with pytest.raises(TableError, match=r"outside \[0, 1\)"):
        read_table(df, chance={"mmlu": 25})


def test_percent_auto_refuse_and_mixed(caplog):
    df = long_frame()
    df.loc[df.task == "arc_easy", "score"] *= 100
    with caplog.at_level(logging.INFO, logger="bayesproxy"):
        table = read_table(df)
    assert "percent" in caplog.text and "arc_easy" in caplog.text
    np.testing.assert_allclose(
        table.score.sel(task="arc_easy").values.ravel(), [0.3, 0.4, 0.5, 0.6]
    )
    with pytest.raises(PercentScoresError, match="arc_easy"):
        read_table(df, percent="refuse")
    assert read_table(df, percent=["arc_easy"]) == table
    mixed = long_frame()
    mixed.loc[(mixed.task == "arc_easy") & (mixed.model == "m4"), "score"] = 60.0
    with pytest.raises(PercentScoresError, match="mix fractions and percentages"):
        read_table(mixed)


def test_duplicates_collapse_or_raise():
    df = long_frame()
    same = pd.concat([df, df.iloc[[0, 1]]], ignore_index=True)
    assert read_table(same) == read_table(df)
    clash = pd.concat([df, df.iloc[[0]].assign(score=0.99)], ignore_index=True)
    with pytest.raises(DuplicateRowsError, match=r"rows 0, 12"):
        read_table(clash)


# ---------------------------------------------------------------------- bad input
def test_missing_columns_named_with_suggestion():
    df = long_frame().rename(columns={"score": "scores"})
    with pytest.raises(MissingColumnsError, match="'scores' -> 'score'"):
        read_table(df, format="long")


def test_non_numeric_scores_name_rows():
    df = long_frame()
    df["score"] = df["score"].astype(object)
    df.loc[[3, 7], "score"] = ["n/a", "0,45"]
    with pytest.raises(NonNumericScoreError, match=r"rows 3, 7 \(2 in all\).*'n/a'"):
        read_table(df)


def test_scores_out_of_range_name_task_and_rows():
    df = long_frame()
    df.loc[0, "score"] = -0.2
    with pytest.raises(ScoreRangeError, match=r"'arc_easy'.*row 0"):
        read_table(df)
    df = long_frame()
    df.loc[1, "score"] = np.inf
    with pytest.raises(ScoreRangeError, match=r"non-finite|outside"):
        read_table(df)
    df = long_frame()
    df.loc[df.task == "mmlu", "score"] = [20, 30, 150, 40]  # > 100 is no percent either
    with pytest.raises(ScoreRangeError, match="'mmlu'"):
        read_table(df)


def test_empty_key_values():
    df = long_frame()
    df.loc[5, "model"] = None
    with pytest.raises(MissingValuesError, match=r"'model'.*row 5"):
        read_table(df)


def test_unknown_target_and_proxy_suggest_close_names():
    with pytest.raises(UnknownTaskError, match="did you mean 'mmlu'"):
        read_table(long_frame(), target="mmlu_cot")
    with pytest.raises(UnknownTaskError, match=r"(?s)unknown proxy 'arc-easy'.*'arc_easy'"):
        read_table(long_frame(), proxies=["arc-easy"])


def test_empty_tables(tmp_path):
    with pytest.raises(EmptyTableError):
        read_table(pd.DataFrame(columns=["model", "task", "score"]))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(EmptyTableError, match="empty"):
        read_table(tmp_path / "empty.csv")
    with pytest.raises(TableError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(TableError, match="unknown file type"):
        read_table(tmp_path / "t.xlsx")


def test_target_on_too_few_units():
    df = long_frame()
    df.loc[(df.task == "mmlu") & df.model.isin(["m3", "m4"]), "score"] = np.nan
    with pytest.raises(InsufficientTargetError, match="observed on 2 unit"):
        read_table(df, target="mmlu")
    assert read_table(df, target="mmlu", min_target_units=2).target == "mmlu"
    df.loc[(df.task == "mmlu") & (df.model == "m2"), "score"] = np.nan
    # one observation is also 'constant', but the target error is the one that explains it
    with pytest.raises(InsufficientTargetError, match="observed on 1 unit"):
        read_table(df, target="mmlu")


def test_constant_task():
    df = long_frame()
    df.loc[df.task == "arc_easy", "score"] = 0.5
    with pytest.raises(ConstantTaskError, match="'arc_easy'"):
        read_table(df)
    assert read_table(df, drop_constant=True).tasks == ["lm_loss", "mmlu"]
    with pytest.raises(ConstantTaskError):  # the target itself may not be dropped
        read_table(df, target="arc_easy", drop_constant=True)


# ---------------------------------------------------------------------- lm-eval
def test_lm_eval_current_layout():
    table = read_lm_eval(DATA / "lm_eval_current", target="gsm8k")
    assert table.units.index.tolist() == [
        "example-org/tiny-lm@2000",
        "example-org/tiny-lm@8000",
        "example-org/tiny-lm@32000",
    ]
    assert table.tasks == ["arc_easy", "gsm8k", "mmlu", "wikitext"]
    assert table.task_info.loc["wikitext", "kind"] == "metric"
    assert not table.task_info.loc["wikitext", "higher_is_better"]
    assert table.score.sel(task="arc_easy").values.ravel().tolist() == [0.31, 0.42, 0.55]
    assert table.dataset["stderr"].sel(task="mmlu").values.ravel().tolist() == [0.0037] * 3
    assert table.dataset["n_items"].sel(task="mmlu").values.ravel().tolist() == [14042] * 3
    assert np.isnan(table.dataset["stderr"].sel(task="wikitext")).all()  # "N/A"
    full = read_lm_eval(DATA / "lm_eval_current", metric="all")
    assert "gsm8k:exact_match:strict-match" in full.tasks
    assert "arc_easy:acc_norm" in full.tasks


def test_lm_eval_model_and_step_options(tmp_path):
    src = sorted((DATA / "lm_eval_current" / "tiny-lm").glob("*.json"))
    for i, path in enumerate(src):
        data = json.loads(path.read_text())
        data["config"]["model_args"] = "pretrained=local"
        del data["model_name"]
        (tmp_path / f"ckpt-{(i + 1) * 100}.json").write_text(json.dumps(data))
    by_regex = read_lm_eval(tmp_path, step_from=r"ckpt-(\d+)", model="mine")
    assert by_regex.units.index.tolist() == ["mine@100", "mine@200", "mine@300"]
    by_fn = read_lm_eval(tmp_path, step_from=lambda p, d: int(p.stem.split("-")[1]) * 2)
    assert by_fn.units["step"].tolist() == [200.0, 400.0, 600.0]
    no_step = lm_eval_records(tmp_path / "ckpt-100.json", step_from="path")
    assert no_step["model"].unique().tolist() == ["local"]
    assert no_step["step"].isna().all()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"results": {"arc": {"acc": 0.3', "truncated"),
        ('{"results": {"arc": {"acc": 0.3}}}}', "malformed"),
        ('{"config": {}}', "no 'results'"),
        ("[1, 2]", "not an object"),
        ('{"results": {"arc": 0.3}}', "not a mapping"),
    ],
)
def test_lm_eval_bad_files_are_named(tmp_path, content, problem):
    shutil.copy(next((DATA / "lm_eval_current" / "tiny-lm").glob("*.json")), tmp_path / "ok.json")
    (tmp_path / "broken.json").write_text(content)
    with pytest.raises(LmEvalFormatError, match=rf"broken\.json.*{problem}"):
        read_lm_eval(tmp_path)


def test_lm_eval_empty_folder(tmp_path):
    with pytest.raises(EmptyTableError, match="no files"):
        read_lm_eval(tmp_path)


# ---------------------------------------------------------------------- shared real data
@pytest.mark.shared_data
def test_lm_eval_older_layout(shared_data_dir):
    table = read_lm_eval(shared_data_dir / "lmeval_samples", target="lambada_openai")
    assert table.n_units == 6
    assert table.units["step"].tolist() == [0, 1, 1000, 103000, 113000, 123000]
    assert table.units["model"].unique().tolist() == ["EleutherAI/pythia-v1.1-160m"]
    assert table.chance["hendrycksTest-anatomy"] == 0.25
    assert table.task_info.loc["lambada_openai", "kind"] == "accuracy"  # acc preferred to ppl
    lambada = table.score.sel(task="lambada_openai").values.ravel()
    assert lambada[-1] > lambada[0]


@pytest.mark.shared_data
def test_read_obsscaling_fully(shared_data_dir):
    table = read_table(shared_data_dir / "obsscaling_base.csv.gz", drop_constant=True)
    assert table.n_units == 140
    assert "mmlu" in table.tasks
    assert not any(t.startswith("bbh_fewshot/word_sorting:exact_match:strict") for t in table.tasks)
    assert table.chance["mmlu"] == 0.25
    df = pd.read_csv(shared_data_dir / "obsscaling_base.csv.gz", low_memory=False)
    assert table.observed.sum().item() <= len(df)


@pytest.mark.shared_data
def test_read_olmo_ladder_fully(shared_data_dir):
    table = read_table(shared_data_dir / "olmo_ladder_long.csv.gz")
    assert table.n_replicates == 2
    assert "lm_loss/c4_en" in table.tasks
    assert table.task_info.loc["lm_loss/c4_en", "kind"] == "metric"
    steps = table.units["step"]
    # the annealed 7B has one evaluation without a step: kept, labelled '@final'
    assert table.units.index[steps.isna()].tolist() == ["peteish7_anneal@final"]
    merged = read_table(
        shared_data_dir / "olmo_ladder_long.csv.gz", run_columns=["model", "train_variant"]
    )
    both = merged.score.notnull().all("replicate").any("task")
    assert both.sum().item() > 0  # the rerun is now a second replicate of its run
