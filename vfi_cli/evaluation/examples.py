"""Example strips of `vfi eval --save-examples`: x0 | prediction | truth | x2 | error map (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from vfi_cli.evaluation.protocol import Triplet

ERROR_GAIN = 4  # error maps in example strips show |pred - truth| * 4


def safe_name(name: str) -> str:
    """A clip name usable in a file name."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def error_map(pred: np.ndarray, truth: np.ndarray, gain: int = ERROR_GAIN) -> np.ndarray:
    """Grey |pred - truth| (mean over RGB) * gain, clipped: [H, W, 3] uint8."""
    err = np.abs(pred.astype(np.int16) - truth.astype(np.int16)).mean(axis=-1) * gain  # [H, W]
    grey = np.clip(np.rint(err), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def example_strip(t: Triplet, pred: np.ndarray, gap: int = 4) -> np.ndarray:
    """x0 | prediction | truth | x2 | error map, side by side with white gaps -> [H, 5W+4g, 3]."""
    h = t.x0.shape[0]
    sep = np.full((h, gap, 3), 255, np.uint8)
    panels = [t.x0, pred, t.truth, t.x2, error_map(pred, t.truth)]
    parts: list[np.ndarray] = []
    for i, p in enumerate(panels):
        parts += [p] if i == 0 else [sep, p]
    return np.concatenate(parts, axis=1)


def save_strip(path: Path, t: Triplet, pred: np.ndarray) -> None:
    """Write example_strip(t, pred) as a PNG."""
    Image.fromarray(example_strip(t, pred)).save(path)
