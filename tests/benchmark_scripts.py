"""Import a script of benchmarks/ (not a package) as a module, for the tests that run its functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str) -> ModuleType:
    """benchmarks/<name>.py as a fresh module named vfi_benchmarks_<name>."""
    spec = importlib.util.spec_from_file_location(f"vfi_benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
