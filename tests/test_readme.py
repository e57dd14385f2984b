"""The README's set-up commands are the ones the project actually runs."""

from __future__ import annotations

import re

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
SETUP_COMMANDS = re.findall(r"```bash\n# \d\. [^\n]*\n([^\n]+)\n```", README)


def test_readme_has_exactly_two_setup_commands():
    assert len(SETUP_COMMANDS) == 2, SETUP_COMMANDS
    demo, tests = SETUP_COMMANDS
    assert "bayesproxy demo" in demo
    assert "scripts/test" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    ci_script = (REPO_ROOT / ".ci" / "run").read_text()
    assert SETUP_COMMANDS[1] in ci_script.splitlines()


def test_python_version_file_pins_312():
    assert (REPO_ROOT / ".python-version").read_text().strip() == "3.12"
