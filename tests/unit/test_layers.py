"""The layer rule: imports only point down (docs/architecture.md), and no module imports
itself through others. Imports inside functions and under TYPE_CHECKING count."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def cycles(graph: grimp.ImportGraph) -> list[set[str]]:
    """The sets of modules that import one another in a circle (Tarjan's algorithm)."""
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(group)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges)))
    for module in edges:
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(grimp.build_graph("monitor", cache_dir=None)) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = grimp.build_graph("monitor", cache_dir=None)
    graph.add_import(importer="monitor.core.ids", imported="monitor.core.clock")
    graph.add_import(importer="monitor.core.clock", imported="monitor.core.ids")
    assert {"monitor.core.ids", "monitor.core.clock"} in cycles(graph)


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layer_check_passes_on_the_tree_and_fails_on_an_upward_import(
    tmp_path: Path,
) -> None:
    shutil.copytree(ROOT / "monitor", tmp_path / "monitor")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    kept = _lint_imports(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr

    # An import inside a function, from the pure core up to the CLI: still an import.
    ids = tmp_path / "monitor" / "core" / "ids.py"
    ids.write_text(
        ids.read_text() + "\n\ndef _upward() -> None:\n    import monitor.cli.commands  # noqa\n"
    )
    broken = _lint_imports(tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "BROKEN" in broken.stdout
    assert "monitor.core.ids -> monitor.cli.commands" in broken.stdout
