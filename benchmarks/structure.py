"""Structure of the packages: largest module, import cycles, private cross-package imports.

    python3 benchmarks/structure.py            # this checkout
    python3 benchmarks/structure.py PATH       # another checkout

Reads the source with ``ast`` (nothing is imported). An import cycle is a strongly connected
component of the graph of imports between modules of ``hybrid``, ``indexes`` and ``fusion``,
counted twice: module-level imports only, and every import (inside functions and
``TYPE_CHECKING`` blocks too). A private cross-package import names a module or object that
starts with ``_`` from another package (``hybrid.encoders`` and ``hybrid`` are different
packages); the notebooks' code cells are searched for ``import _x`` / ``._x`` too.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

TOPS = ("hybrid", "indexes", "fusion")


def _private(parts: list[str]) -> bool:
    return any(p.startswith("_") and not p.startswith("__") for p in parts)


class Tree:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, Path] = {}
        for top in TOPS:
            for path in (root / top).rglob("*.py"):
                parts = list(path.relative_to(root).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                self.files[".".join(parts)] = path
        self.packages = {m for m, p in self.files.items() if p.name == "__init__.py"}

    def package_of(self, module: str) -> str:
        return module if module in self.packages else module.rsplit(".", 1)[0]

    def target(self, base: str, name: str | None) -> str | None:
        if name and f"{base}.{name}" in self.files:
            return f"{base}.{name}"
        while base and base not in self.files:
            base = base.rsplit(".", 1)[0] if "." in base else ""
        return base or None

    def imports(self, module: str, tree: ast.Module):
        """(node, base module, imported name or None, at module level) for each import."""
        top_level = set()
        stack = list(tree.body)
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Import | ast.ImportFrom):
                top_level.add(id(node))
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                stack += node.body + node.orelse
            elif isinstance(node, ast.Try):
                stack += node.body + node.orelse + node.finalbody
                stack += [n for h in node.handlers for n in h.body]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                pairs = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = self.package_of(module).split(".")
                    package = package[: len(package) - node.level + 1]
                    base = ".".join(package + ([base] if base else []))
                pairs = [(base, a.name) for a in node.names]
            else:
                continue
            for base, name in pairs:
                yield node, base, name, id(node) in top_level


def cycles(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative enough)."""
    sys.setrecursionlimit(10_000)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
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
                out.append(sorted(component))

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def main(root: Path) -> None:
    tree = Tree(root)
    top_edges: dict[str, set[str]] = {}
    all_edges: dict[str, set[str]] = {}
    private = []
    for module, path in tree.files.items():
        for node, base, name, at_top in tree.imports(module, ast.parse(path.read_text())):
            if base.split(".")[0] not in TOPS:
                continue
            target = tree.target(base, name)
            if target is None or target == module:
                continue
            all_edges.setdefault(module, set()).add(target)
            if at_top:
                top_edges.setdefault(module, set()).add(target)
            inside = path.name == "__init__.py" and target.startswith(module + ".")
            parts = base.split(".") + ([name] if name else [])
            if _private(parts) and tree.package_of(module) != tree.package_of(target):
                if not inside:
                    where = path.relative_to(root)
                    private.append(f"{where}:{node.lineno} {'.'.join(parts)}")
    for notebook in sorted((root / "notebooks").glob("*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            for line in "".join(cell["source"]).splitlines() if cell["cell_type"] == "code" else []:
                s = line.strip()
                if s.startswith(("from ", "import ")) and ("._" in s or "import _" in s):
                    private.append(f"{notebook.relative_to(root)}: {s}")
    sizes = sorted((len(p.read_text().splitlines()), m) for m, p in tree.files.items())
    top_cycles = cycles(list(tree.files), top_edges)
    all_cycles = cycles(list(tree.files), all_edges)
    print("| figure | value |\n|---|---:|")
    print(f"| largest module ({sizes[-1][1]}) | {sizes[-1][0]} lines |")
    print(f"| import cycles, module-level imports | {len(top_cycles)} |")
    print(f"| import cycles, all imports | {len(all_cycles)} |")
    print(f"| private cross-package imports | {len(private)} |")
    for c in all_cycles:
        print(f"\ncycle: {' <-> '.join(c)}")
    for p in private:
        print(f"\nprivate: {p}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]))
