"""The rules tests/test_dispatch.py holds src/ to: no dispatch on op or neuron names outside
the op-spec and neuron-kind tables."""

from __future__ import annotations

import ast


def _literal_names(node: ast.AST) -> int:
    """How many op names a literal holds: 1 for a string, n for a collection of n strings,
    0 for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return 1
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return len(node.elts)
    return 0


def _op_tests(test: ast.AST) -> list[int]:
    """For each comparison of ``<x>.op`` with a literal in an if-test (not inside calls or
    comprehensions), how many names it compares with."""
    found = []
    stack = [test]
    while stack:
        t = stack.pop()
        if isinstance(t, ast.BoolOp):
            stack.extend(t.values)
        elif isinstance(t, ast.UnaryOp):
            stack.append(t.operand)
        elif isinstance(t, ast.Compare):
            sides = [t.left, *t.comparators]
            if any(isinstance(s, ast.Attribute) and s.attr == "op" for s in sides):
                found.extend(n for n in map(_literal_names, sides) if n)
    return found


def _chains(body: list[ast.stmt]) -> list[list[ast.If]]:
    """The if-statements of one block, each with its elif branches."""
    out = []
    for stmt in body:
        if isinstance(stmt, ast.If):
            chain = [stmt]
            while len(chain[-1].orelse) == 1 and isinstance(chain[-1].orelse[0], ast.If):
                chain.append(chain[-1].orelse[0])
            out.append(chain)
    return out


def _is_signed_read(node: ast.AST) -> bool:
    if isinstance(node, ast.Subscript):
        key = node.slice
        return (
            isinstance(key, ast.Constant)
            and key.value == "signed"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "attrs"
        )
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        f = node.func
        return (
            f.attr == "get"
            and isinstance(f.value, ast.Attribute)
            and f.value.attr == "attrs"
            and bool(node.args)
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "signed"
        )
    return False


def _is_name_getattr(node: ast.AST) -> bool:
    """``getattr(x, "_" + name)`` or ``getattr(x, f"_{name}")``: a method per name."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
        and isinstance(node.args[1], (ast.BinOp, ast.JoinedStr))
    )


def violations(source: str, where: str, *, neuron_table: bool = False) -> list[str]:
    """What in ``source`` dispatches on op or neuron names:

    * an if/elif chain, or two ifs of one block, comparing ``<x>.op`` with name literals;
    * an if comparing ``<x>.op`` with a literal collection of names (``in ("conv", ...)``);
    * a read of ``attrs["signed"]`` / ``attrs.get("signed")`` (``neuron_table`` allows it);
    * ``getattr(self, "_" + name)``."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        for block in ("body", "orelse", "finalbody"):
            stmts = getattr(node, block, None)
            if not isinstance(stmts, list) or (
                block == "orelse"
                and isinstance(node, ast.If)
                and len(stmts) == 1
                and isinstance(stmts[0], ast.If)
            ):
                continue  # an elif: counted with its chain
            comparing = [c for c in _chains(stmts) if any(_op_tests(i.test) for i in c)]
            branches = sum(sum(1 for i in c if _op_tests(i.test)) for c in comparing)
            if branches >= 2:
                found.append(f"{where}:{comparing[0][0].lineno}: an if-chain on op names")
        if isinstance(node, ast.If) and any(n >= 2 for n in _op_tests(node.test)):
            found.append(f"{where}:{line}: an if on a literal set of op names")
        if not neuron_table and _is_signed_read(node):
            found.append(f"{where}:{line}: reads the signed attribute outside snnconv.neurons")
        if _is_name_getattr(node):
            found.append(f"{where}:{line}: getattr dispatch on a name")
    return found
