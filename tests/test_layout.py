"""The package layout is the architecture: media -> models -> media, training and evaluation beside.

Rules checked here: `vfi double` (and `vfi retime`) load nothing from vfi_cli.training or
vfi_cli.evaluation; only vfi_cli.media imports av; the intra-package imports form no cycle, between
modules or between subpackages.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from clips import make_clip

PKG = Path(__file__).resolve().parents[1] / "vfi_cli"
ROOT = PKG.parent
SUBPACKAGES = ("media", "models", "training", "evaluation")
# what each subpackage may import from the others (the top level - cli, pipeline, ... - imports them all)
ALLOWED = {"media": set(), "models": set(), "training": {"media", "models"}, "evaluation": {"media", "models"}}

_RUN_DOUBLE = """
import json, sys
from vfi_cli.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    loaded = sorted(m for m in sys.modules if m.startswith(("vfi_cli.training", "vfi_cli.evaluation")))
    print(json.dumps(loaded))
"""


@pytest.mark.parametrize("command", [["double"], ["retime", "--factor", "3"]])
def test_inference_path_loads_no_training_or_evaluation(tmp_path, tiny_weights, command):
    """Runs the command in a fresh interpreter and lists the vfi_cli modules it loaded."""
    src = make_clip(tmp_path / "in.mkv", n_frames=4, width=32, height=32)
    out = tmp_path / "out.mkv"
    args = [*command[:1], str(src), str(out), *command[1:], "--weights", str(tiny_weights), "-q"]
    res = subprocess.run([sys.executable, "-c", _RUN_DOUBLE, *args], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert out.is_file()
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """vfi_cli modules a file imports (at any depth: lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vfi_cli"):
            assert node.level == 0, f"{path}: relative import"
            for alias in node.names:  # `from vfi_cli.models import checkpoint` imports a module
                sub = f"{node.module}.{alias.name}"
                found.add(sub if (PKG.parent / sub.replace(".", "/")).with_suffix(".py").is_file() else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("vfi_cli"))
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PKG.rglob("*.py"))}


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES else None


def test_module_imports_form_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if d == m or d == "vfi_cli":  # `from vfi_cli import __version__`
                continue
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(d):] + [m, d]))
            if d in graph and not state.get(d):
                visit(d, stack + [m])
        state[m] = 2

    for m in graph:
        if not state.get(m):
            visit(m, [])


def test_subpackages_import_only_downwards():
    bad = []
    for module, deps in _graph().items():
        here = _subpackage(module)
        if here is None:
            continue
        for d in deps:
            there = _subpackage(d)
            if there is None and d not in ("vfi_cli", "vfi_cli.errors", "vfi_cli.frames"):
                bad.append(f"{module} -> {d} (top level)")
            elif there not in (None, here) and there not in ALLOWED[here]:
                bad.append(f"{module} -> {d}")
    assert bad == []


def test_only_media_imports_av():
    importers = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "av" or n.startswith("av.") for n in names):
                importers.append(_module_name(path))
    assert importers and all(m.startswith("vfi_cli.media.") for m in importers), sorted(set(importers))


def test_modules_stay_small():
    big = {str(p.relative_to(ROOT)): n for p in PKG.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert big == {}
