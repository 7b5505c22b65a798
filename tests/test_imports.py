"""The package's import graph (module-level and function-level imports, read with ``ast``) has no circles, and
the ship command runs notebooks without importing the runner."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "phenoface"

# Circles that are known and waiting to be taken apart; this list only ever shrinks.
ALLOWED_CYCLES: list[set[str]] = []


def modules(package: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``)."""
    out = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _owner(name: str, known) -> str | None:
    """The module ``name`` lives in (``phenoface.cohort.Cohort`` -> ``phenoface.cohort``)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its file (top level or inside functions).
    ``from . import x`` counts as importing the submodule ``x`` where there is one, else the package."""
    known = modules(package)
    graph = {}
    for name, (path, is_package) in known.items():
        here = name if is_package else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{node.module}" if node.module else anchor
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
        graph[name] = {t for t in (_owner(t, known) for t in targets if t.split(".")[0] == "phenoface")
                       if t and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_cycles_finds_a_circle_and_nothing_else():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_graph_reads_relative_function_level_and_package_imports(tmp_path):
    pkg = tmp_path / "phenoface"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "top.py").write_text("def f():\n    from .sub import leaf\n")
    (pkg / "sub" / "__init__.py").write_text("from .leaf import X\n")
    (pkg / "sub" / "leaf.py").write_text("import phenoface.top\nfrom .. import top\nX = 1\n")
    graph = import_graph(pkg)
    assert graph["phenoface.top"] == {"phenoface.sub.leaf"}
    assert graph["phenoface.sub"] == {"phenoface.sub.leaf"}
    assert graph["phenoface.sub.leaf"] == {"phenoface.top"}
    assert cycles(graph) == [{"phenoface.top", "phenoface.sub.leaf"}]


def test_no_import_circles():
    found = [c for c in cycles(import_graph()) if c not in ALLOWED_CYCLES]
    assert not found, "import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_ship_does_not_import_the_runner():
    """The ship command runs notebooks through ``python -m phenoface.runner`` as a child process."""
    graph = import_graph()
    reach, todo = set(), ["phenoface.ship"]
    while todo:
        for dep in graph[todo.pop()] - reach:
            reach.add(dep)
            todo.append(dep)
    assert "phenoface.runner" not in reach


# The data flow, bottom to top: a module may import its own layer and the layers below it, never one above.
LAYERS = [
    {"config", "params", "ages", "labels", "stats", "hpo", "modelio", "pixels", "report"},
    {"cohort"}, {"datasets"}, {"kg"}, {"llm"}, {"phenotypes"}, {"profiles"}, {"conditioning"}, {"model"},
    {"sampling"}, {"editing"}, {"baselines"}, {"evaluation"}, {"summary", "publish"}, {"study"},
    {"runner", "benchmarks"}, {"ship"},
]


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_every_top_level_module_has_a_layer():
    tops = {m.split(".")[1] for m in modules() if "." in m}
    assert tops <= set().union(*LAYERS), f"put {sorted(tops - set().union(*LAYERS))} into LAYERS"


def test_no_import_runs_up_the_data_flow():
    graph = import_graph()
    up = [f"{a} -> {b}" for a, bs in sorted(graph.items()) if "." in a for b in sorted(bs) if "." in b
          and _layer(b) > _layer(a)]
    assert not up, "imports against the data flow: " + "; ".join(up)
