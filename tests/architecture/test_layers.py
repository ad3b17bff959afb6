"""The package's shape (docs/architecture.md): no import cycle, and the Hydra config tree read only where it should be.

Imports are read from the source (module level and inside functions alike: a lazy import is still a dependency).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "reid"
# Read the Hydra config tree: the entry points, the job around the stages, the builders, the config checks, the
# run-folder reader, and the two Hydra plug-ins (the sweep callback and the resumable Optuna sweeper).
CONFIG_READERS = {
    "reid.train", "reid.evaluate", "reid.export", "reid.import_weights", "reid.pretrain", "reid.prepare", "reid.search",
    "reid.pipeline", "reid.inference", "reid.tracking.sweep_callback", "reid.tracking.optuna_resume",
}
CONFIG_PACKAGES = ("reid.build", "reid.config")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: {i for i in _imports(p, m, modules) if i in modules and i != m} for m, p in modules.items()}


def test_no_import_cycle_among_the_packages_modules():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == []


def test_only_the_entry_points_and_builders_read_the_hydra_config_tree():
    readers = set()
    for name, path in _modules().items():
        imported = _imports(path, name, _modules())
        if any(i.split(".")[0] in ("omegaconf", "hydra") for i in imported):
            readers.add(name)
    allowed = {r for r in readers if r in CONFIG_READERS or r.startswith(CONFIG_PACKAGES)}
    assert readers - allowed == set(), "library modules below the builders must take plain values"


def test_the_pipeline_stays_small():
    assert len((PACKAGE / "pipeline.py").read_text().splitlines()) < 250
