from pathlib import Path

from typer.testing import CliRunner

import bayesproxy.cli.data  # noqa: F401  (registers `info`)
from bayesproxy.cli._app import app

DATA = Path(__file__).parent / "data"


def test_info_on_lm_eval_folder():
    result = CliRunner().invoke(app, ["info", str(DATA / "lm_eval_current"), "--target", "gsm8k"])
    assert result.exit_code == 0, result.output
    assert "3 units" in result.output
    assert "replicates: 1" in result.output
    assert "missing (unit, task) cells: 0.0%" in result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("mmlu"))
    assert "0.25" in line  # chance level shown


def test_info_on_csv_and_bad_target(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("model,task,score\na,x,0.1\nb,x,0.3\nc,x,0.5\na,y,0.2\nb,y,0.3\nc,y,0.9\n")
    result = CliRunner().invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 tasks" in result.output
    bad = CliRunner().invoke(app, ["info", str(path), "--target", "yy"])
    assert bad.exit_code != 0
    assert "did you mean 'y'" in str(bad.exception)
