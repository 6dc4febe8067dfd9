"""The documentation a user copies from works: the API example runs, every verb shows one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from snnconv.cli.main import cli

DOCS = Path(__file__).parents[1] / "docs"


@pytest.mark.parametrize("verb", sorted(cli.commands))
def test_every_verb_help_has_an_example(verb):
    result = CliRunner().invoke(cli, [verb, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and f"snnconv {verb}" in result.output


@pytest.mark.slow
def test_api_example_runs(tmp_path):
    code = re.search(r"```python\n(.*?)```", (DOCS / "api.md").read_text(), re.S).group(1)
    src = str(Path(__file__).parents[1] / "src")
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": src, "PATH": ""},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "SNN" in r.stdout and (tmp_path / "report.json").exists()
