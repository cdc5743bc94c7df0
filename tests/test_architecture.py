"""The package's import graph, read from the source (every import, those inside functions
too): no module takes part in a cycle, the layers import only downwards, and the simulator side
never imports torch."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dglsim"
# the layers that must never import the ones named: the recipe builds runs for both the study
# layer and the real ranks, so it imports neither, and the ranks never import the study layer
FORBIDDEN = {
    "dglsim.recipe": {"dglsim.study", "dglsim.ranks"},
    "dglsim.ranks": {"dglsim.study"},
    "dglsim.sim": {"dglsim.study", "dglsim.ranks", "dglsim.recipe", "dglsim.train"},
    "dglsim.schedule": {"dglsim.study", "dglsim.ranks", "dglsim.recipe", "dglsim.train", "dglsim.sim"},
}
TORCH_FREE = ("dglsim.sim", "dglsim.schedule", "dglsim.engine", "dglsim.delays", "dglsim.buffers", "dglsim.cluster", "dglsim.limits", "dglsim.errors")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the modules it imports (dglsim's own, and 'torch' for any torch import)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                # `from pkg import sub` imports the module pkg.sub; `from pkg import name`, pkg itself
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in names:
                if target.split(".")[0] == "torch":
                    targets.add("torch")
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in graph.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_no_module_takes_part_in_an_import_cycle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downwards(layer):
    graph = import_graph()
    for module in (m for m in graph if m == layer or m.startswith(layer + ".")):
        bad = {t for t in graph[module] for f in FORBIDDEN[layer] if t == f or t.startswith(f + ".")}
        assert not bad, f"{module} imports {sorted(bad)}"


@pytest.mark.parametrize("root", TORCH_FREE)
def test_the_simulator_side_never_reaches_torch(root):
    graph = import_graph()
    for module in (m for m in graph if m == root or m.startswith(root + ".")):
        assert "torch" not in _reach(graph, module), f"{module} reaches torch"


def test_the_checks_see_a_cycle_and_a_torch_import_when_there_is_one():
    """Negative controls: the same functions on graphs that break the rules."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    graph = import_graph()
    graph["dglsim.sim.trace"] = graph["dglsim.sim.trace"] | {"dglsim.study.config"}
    graph["dglsim.study.config"] = graph["dglsim.study.config"] | {"dglsim.sim.trace"}
    assert any("dglsim.sim.trace" in c for c in cycles(graph))
    assert "torch" in _reach(graph, "dglsim.sim.trace")  # through the study layer
