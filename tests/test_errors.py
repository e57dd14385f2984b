import pytest

from bayesproxy import errors as E

ALL_TABLE = [
    E.MissingColumnsError(["score"], available=["scor", "model"]),
    E.NonNumericScoreError("score", [1, 2], ["abc", "x"]),
    E.ScoreRangeError("mmlu", [4], [1.5]),
    E.PercentScoresError(["mmlu"]),
    E.DuplicateRowsError([("m", "t", "0")], [1, 2]),
    E.UnknownTaskError("mmlu_x", ["mmlu", "arc"]),
    E.EmptyTableError(),
    E.InsufficientTargetError("t", 1, 3),
    E.ConstantTaskError(["flat"]),
    E.LmEvalFormatError("a/b.json", "truncated"),
]


@pytest.mark.parametrize("err", ALL_TABLE, ids=lambda e: type(e).__name__)
def test_table_errors_share_base_and_hint(err):
    assert isinstance(err, E.TableError)
    assert isinstance(err, E.BayesproxyError)
    assert "\nHint: " in str(err)


def test_missing_column_suggests_close_name():
    assert "'scor' -> 'score'" in str(ALL_TABLE[0])


def test_unknown_task_suggests_close_names():
    msg = str(E.UnknownTaskError("mmlu_x", ["mmlu", "arc", "gsm8k"], role="target"))
    assert "unknown target 'mmlu_x'" in msg
    assert "did you mean 'mmlu'" in msg


def test_lm_eval_error_names_file():
    assert "a/b.json" in str(ALL_TABLE[-1])


def test_format_rows_elides():
    assert E.format_rows(range(10), limit=2) == "rows 0, 1, ... (10 in all)"
    assert E.format_rows([4]) == "row 4 (1 in all)"


def test_other_branches():
    assert issubclass(E.ConvergenceError, E.BayesproxyError)
    assert issubclass(E.ModelFileError, E.BayesproxyError)
    assert issubclass(E.ConvergenceWarning, UserWarning)
