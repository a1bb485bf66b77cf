"""Shared pytest fixtures.

tests/ has no __init__.py, so pytest (default "prepend" import mode) puts this
folder on sys.path and test modules can `from clips import make_clip`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from clips import make_clip


@pytest.fixture
def tmp_clip(tmp_path: Path) -> Callable[..., Path]:
    """Factory: tmp_clip("name.mkv", **make_clip_kwargs) -> path of a fresh clip in tmp_path."""

    def factory(name: str = "clip.mkv", **kwargs) -> Path:
        return make_clip(tmp_path / name, **kwargs)

    return factory
