"""The documentation a user copies from works: the API example runs, every verb shows one."""

from __future__ import annotations

import importlib
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


def _resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module, or an attribute of one, that can be imported."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_every_name_api_md_shows_exists():
    """Each `snnconv.…` name in docs/api.md imports, or is a metadata key or schema the code
    writes."""
    text = (DOCS / "api.md").read_text()
    names = set(re.findall(r"`(snnconv(?:\.\w+)+)", text))
    src = Path(__file__).parents[1] / "src" / "snnconv"
    literals = "\n".join(p.read_text() for p in src.rglob("*.py"))
    missing = [n for n in sorted(names) if not _resolves(n) and f'"{n}' not in literals]
    assert names and not missing, f"docs/api.md names what the code lacks: {missing}"
    imported = re.findall(r"^from (snnconv[\w.]*) import ([\w, ]+)$", text, re.M)
    for module, listed in imported:
        for name in (n.strip() for n in listed.split(",")):
            assert _resolves(f"{module}.{name}"), f"docs/api.md imports {module}.{name}"
