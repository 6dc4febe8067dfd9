"""The package's shape: no import cycles between snnconv's modules, no oversized module.

The import graph is read from the source with ``ast`` (module-level and function-level
imports alike), so an import hidden inside a function to dodge a cycle still counts. An edge
goes to each module an import runs: ``from a.b import c`` runs ``a.b.c`` when that is a
submodule, and the ``__init__`` of every package on the way that the importer is not in.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Cycles that remain, each as the modules it runs through; the test fails on any other
#: cycle, and on one of these reaching further.
KNOWN_CYCLES: set[frozenset[str]] = set()

MAX_LINES = 400
#: Modules over MAX_LINES that are being split now.
KNOWN_OVERSIZED: set[str] = set()


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(src: Path = SRC) -> dict[str, Path]:
    return {_module_name(p, src): p for p in sorted((src / "snnconv").rglob("*.py"))}


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The snnconv modules that module ``name`` (at ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    # imports for type checkers only never run
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If)
        and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from a import b` imports the submodule a.b when there is one, else a itself
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t if t in modules else base for t in targets]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` where c is a name
                target = target.rpartition(".")[0]
            if target.startswith("snnconv"):
                out.update(_runs(name, target))
    return out


def _runs(importer: str, target: str) -> set[str]:
    """What importing ``target`` runs: it and its packages' ``__init__``s, less those of the
    importer's own packages (already running when it runs)."""
    own = {".".join(importer.split(".")[:i]) for i in range(1, importer.count(".") + 2)}
    parts = target.split(".")
    chain = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return chain - own


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Module -> the snnconv modules importing it runs."""
    modules = _modules(src)
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _cycle_in(component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """One cycle through the component's first module, as a path back to itself."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:  # breadth first: the shortest way back
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return [start]


def _new_cycles(graph: dict[str, set[str]]) -> list[str]:
    found = _components(graph)
    new = [c for c in found if not any(c <= known for known in KNOWN_CYCLES)]
    return [" -> ".join(_cycle_in(c, graph)) for c in new]


def _fake_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "snnconv" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_import_graph_follows_every_kind_of_import(tmp_path):
    src = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "a/__init__.py": "from snnconv.a import run\n",  # a package imports its module
            "a/run.py": "from .util import helper\n",  # relative
            "a/util.py": "def helper():\n    from snnconv.b import lib  # in a function\n",
            "b/__init__.py": "",
            "b/lib.py": "import snnconv.c.deep.name\n",  # `name` is not a module
            "c/__init__.py": "",
            "c/deep.py": "X = 1\n",
        },
    )
    graph = import_graph(src)
    assert graph["snnconv.a"] == {"snnconv.a.run"}
    assert graph["snnconv.a.run"] == {"snnconv.a.util"}  # not its own package, already running
    assert graph["snnconv.a.util"] == {"snnconv.b", "snnconv.b.lib"}  # b's __init__ runs too
    assert graph["snnconv.b.lib"] == {"snnconv.c", "snnconv.c.deep"}
    assert _components(graph) == []
    (src / "snnconv" / "c" / "deep.py").write_text("from snnconv.a.util import helper\n")
    graph = import_graph(src)
    assert _components(graph) == [
        {"snnconv.a", "snnconv.a.run", "snnconv.a.util", "snnconv.b.lib", "snnconv.c.deep"}
    ]
    cycle = _new_cycles(graph)[0].split(" -> ")
    assert cycle[0] == cycle[-1] == "snnconv.a"
    assert all(b in graph[a] for a, b in zip(cycle, cycle[1:], strict=False))  # a real path


def test_no_import_cycles():
    cycles = _new_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_module_is_oversized():
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES and name not in KNOWN_OVERSIZED
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"
