"""How the package is put together: what starts without torch, no import cycles, and
dependencies that match the imports (the web server an extra)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "painterly"
WEB_MODULES = {"fastapi", "uvicorn", "starlette", "pydantic"}


def _python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (PYTHONPATH is inherited, so it sees this tree)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["--help"],
        ["presets"],
        ["explain", "--help"],
        ["stylize", "--help"],
        ["video", "--help"],
    ],
)
def test_cli_starts_without_torch(argv):
    done = _python(
        "import sys\n"
        "from painterly import cli\n"
        f"code = cli.main({argv!r})\n"
        "heavy = sorted({'torch', 'numpy', 'PIL', 'av', 'cv2'} & set(sys.modules))\n"
        "print('exit', code, 'heavy', heavy)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "exit 0 heavy []"


def test_lazy_names_still_import():
    done = _python(
        "import painterly\n"
        "from painterly import run, stylize, run_batch, Result\n"
        "from painterly.report import explain, Report, SECTIONS, heatmap\n"
        "assert painterly.run is run and callable(explain) and SECTIONS\n"
        "print('ok')\n"
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module, module: str, is_package: bool, every: bool = False) -> set[str]:
    """Names ``module`` imports: the statements at module level (also under a
    module-level if/try), or with ``every`` also those inside functions and classes (all
    but those under ``if TYPE_CHECKING:``, which never run); relative imports resolved."""
    found: set[str] = set()
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            todo += node.orelse
        elif isinstance(node, ast.If | ast.Try):
            todo += node.body + node.orelse + getattr(node, "finalbody", [])
            todo += [s for h in getattr(node, "handlers", []) for s in h.body]
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
        elif every:
            todo += [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt)]
    return found


def import_graph(every: bool = False) -> dict[str, set[str]]:
    """painterly's import graph: module -> the painterly modules it imports (at module
    level; with ``every``, inside functions too)."""
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = _imports(tree, name, path.name == "__init__.py", every)
        graph[name] = {m for m in imported if m in files and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert {"painterly", "painterly.cli", "painterly.report.runs"} <= set(graph)
    assert "painterly.api" in graph["painterly.report.runs"]  # the graph sees real edges
    assert find_cycle(graph) is None


def test_no_import_cycle_counting_imports_inside_functions():
    # An import inside a function only hides a cycle until that function runs.
    every = import_graph(every=True)
    assert "painterly.fast.apply" in every["painterly.api"]  # seen inside model_start
    assert "painterly.fast.apply" not in import_graph()["painterly.api"]
    assert find_cycle(every) is None


def _third_party_imports() -> set[str]:
    """Top-level names of every module src/ imports anywhere, not stdlib or painterly."""
    names = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"painterly"}


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", r).group().lower() for r in requirements}


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_dependencies_declare_every_import_and_web_is_an_extra():
    project = _pyproject()["project"]
    base = _requirement_names(project["dependencies"])
    extras = {k: _requirement_names(v) for k, v in project["optional-dependencies"].items()}
    declared = base | set().union(*extras.values())
    distributions = importlib.metadata.packages_distributions()
    imported = _third_party_imports()
    assert {"torch", "PIL", "fastapi", "starlette", "pydantic"} <= imported
    for module in imported:
        dists = {d.lower() for d in distributions.get(module, [module])}
        assert dists & declared, f"{module} is imported but not declared in pyproject.toml"
    assert WEB_MODULES <= extras["web"] and not WEB_MODULES & base
    assert "hypothesis" in extras["dev"]


def test_templates_are_package_data():
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["painterly"]
    templates = sorted((SRC / "report" / "templates").iterdir())
    assert any(p.suffix == ".css" for p in templates) and len(templates) > 5
    for path in templates:
        relative = path.relative_to(SRC)
        assert any(relative.match(pattern) for pattern in patterns), relative


def test_serve_without_the_web_extra_is_one_line_and_exit_2():
    # None in sys.modules makes `import fastapi` fail as if it were not installed.
    done = _python(
        "import sys\n"
        "sys.modules['fastapi'] = None\n"
        "from painterly import cli\n"
        "sys.exit(cli.main(['serve', '--port', '0']))\n"
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "painterly[web]"' in lines[0]
    assert lines[0].startswith("painterly: error:") and "fastapi" in lines[0]
