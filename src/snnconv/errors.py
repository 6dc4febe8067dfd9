"""Errors meant for people. The CLI prints their message and exits 2; no traceback."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: a file, a dataset, an option. The message says what, where, and what to do."""


class UnsupportedOpsError(InputError):
    """The model holds ops snnconv cannot convert. ``nodes`` lists (node name, op type)."""

    def __init__(self, nodes: list[tuple[str, str]], hint: str = "", source: str = ""):
        self.nodes = nodes
        lines = [f"  {name}  ({op})" for name, op in nodes]
        where = f"{source}: " if source else ""
        msg = f"{where}{len(nodes)} node(s) have ops snnconv cannot convert:\n" + "\n".join(lines)
        if hint:
            msg += "\n" + hint
        super().__init__(msg)
