"""Run the snnconv CLI inside the test process: much faster than a subprocess."""

from __future__ import annotations

import io
import sys

from snnconv.cli.main import main


def run_in_process(*args: str) -> tuple[int, str]:
    """``snnconv ARGS``; returns (exit code, what it wrote to stderr)."""
    argv, stderr, err = sys.argv, sys.stderr, io.StringIO()
    sys.argv, sys.stderr = ["snnconv", *args], err
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv, sys.stderr = argv, stderr
    return code, err.getvalue()
