"""The package's shape: imports point down the layers (cli → bench/train → registry → methods → models → data/io →
motion/skeleton/rotations), with no cycle — counting every import, function-local ones included."""

from __future__ import annotations

import ast
from pathlib import Path

import motionsynth

PACKAGE = Path(motionsynth.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The motionsynth modules a ``from … import …`` statement in ``module`` reaches."""
    if node.level:
        base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("motionsynth"):
        return []
    return [target] + [f"{target}.{a.name}" for a in node.names]


def import_graph() -> dict[str, set[str]]:
    """module → the motionsynth modules it imports anywhere in its body (names that are not modules dropped)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                targets.update(_resolve(name, path.name == "__init__.py", node))
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("motionsynth"))
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def _parent_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph without the edge from a module to the package it lives in (``from . import x`` in a package's
    own modules reaches ``pkg/__init__``, which re-exports them: not a dependency between layers)."""
    return {n: {m for m in ts if not n.startswith(m + ".")} for n, ts in graph.items()}


def test_no_import_cycles():
    cycle = _cycle(_parent_packages(import_graph()))
    assert cycle is None, " → ".join(cycle)


def test_layers_point_down():
    """Networks know nothing of tasks, the harness, training or the command line; methods nothing of the harness."""
    graph = import_graph()
    rules = {
        "motionsynth.models": ("motionsynth.bench", "motionsynth.methods", "motionsynth.registry", "motionsynth.cli",
                               "motionsynth.train"),
        "motionsynth.methods": ("motionsynth.bench", "motionsynth.registry", "motionsynth.cli", "motionsynth.train"),
        "motionsynth.data": ("motionsynth.bench", "motionsynth.models", "motionsynth.methods", "motionsynth.cli"),
        "motionsynth.checkpoint": ("motionsynth.models", "motionsynth.methods", "motionsynth.registry"),
    }
    bad = [f"{n} imports {t}" for n, targets in graph.items() for layer, banned in rules.items()
           if n == layer or n.startswith(layer + ".") for t in targets if t.startswith(banned)]
    assert not bad, "\n".join(bad)
    entry = ("motionsynth.cli", "motionsynth.__main__")  # the command line and ``python -m motionsynth``
    below_cli = [f"{n} imports {t}" for n, ts in graph.items() if not n.startswith(entry)
                 for t in ts if t.startswith("motionsynth.cli")]
    assert not below_cli, "\n".join(below_cli)


def test_the_graph_sees_function_local_imports():
    """The walker finds imports inside functions too (a cycle hidden in a function body still counts)."""
    graph = import_graph()
    assert "motionsynth.registry" in graph["motionsynth.cli.tasks"]  # imported inside the commands


def _task_lists(tree: ast.AST, names: set[str]) -> list[int]:
    """Lines of literal lists, tuples, sets and dicts (keys or values) holding three or more task names."""
    lines = []
    for node in ast.walk(tree):
        items = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(
            node, (ast.List, ast.Tuple, ast.Set)) else None
        if items is None:
            continue
        found = {i.value for i in items if isinstance(i, ast.Constant) and i.value in names}
        if len(found) >= 3:
            lines.append(node.lineno)
    return lines


def test_no_module_spells_out_a_task_list():
    """The task table (`tasks.TASKS`) is the one list of tasks: every front end (the task commands, report, serve,
    the demo, bench and its summary) iterates it. Only `tasks.py` defines tasks; a method says which it serves
    (``Method.tasks``, in `methods/`); the networks' training masks (`models/`: a curriculum of mask kinds, some named
    like tasks) are not the task table."""
    from motionsynth.tasks import TASKS

    names = set(TASKS)
    assert len(names) >= 3
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "tasks.py" or rel.startswith(("methods/", "models/")):
            continue
        bad += [f"{rel}:{line}" for line in _task_lists(ast.parse(path.read_text()), names)]
    assert not bad, "task lists spelled out (iterate tasks.TASKS instead): " + ", ".join(bad)


def test_the_task_list_check_sees_a_list():
    """The check above finds a literal task list (keys of a dict, items of a tuple)."""
    names = {"inbetween", "complete", "predict", "denoise"}
    tree = ast.parse('A = {"inbetween": 1, "complete": 2, "predict": 3}\nB = ("denoise", "x")\n'
                     'C = ["inbetween", "complete", "denoise"]\n')
    assert _task_lists(tree, names) == [1, 3]
