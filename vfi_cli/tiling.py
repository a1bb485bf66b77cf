"""Overlapping tiles with feathered blending, so large frames run with a bounded peak memory.

In: a padded frame size, a pixel budget, an overlap and the model stride. Out: a TileGrid (tile
windows on the stride), and `blend`, which calls a synth(y0, y1, x0, x1) -> [B, 3, h, w] per tile
and blends the tiles with linear ramps over the overlap into [B, 3, H, W].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

DEFAULT_TILE_PIXELS = 2_400_000  # frames up to 1920x1088 (padded 1080p) run in one piece
DEFAULT_OVERLAP = 128  # pixels shared by neighbouring tiles, blended with linear ramps


@dataclass(frozen=True)
class TileGrid:
    """How a frame of (height, width) pixels is cut: ``ny`` x ``nx`` tiles of (th, tw) pixels whose
    origins and sizes are multiples of ``align``; neighbours share at least ``overlap`` pixels."""

    height: int
    width: int
    ny: int
    nx: int
    th: int
    tw: int
    overlap: int
    align: int = 1

    @property
    def count(self) -> int:
        return self.ny * self.nx

    def windows(self) -> list[tuple[int, int, int, int]]:
        """(y0, y1, x0, x1) of every tile, row-major."""
        ys = _starts(self.height, self.th, self.ny, self.align)
        xs = _starts(self.width, self.tw, self.nx, self.align)
        return [(y, y + self.th, x, x + self.tw) for y in ys for x in xs]

    def scaled(self, factor: int) -> "TileGrid":
        """The same cut on a grid ``factor`` times coarser (sizes must divide)."""
        return TileGrid(self.height // factor, self.width // factor, self.ny, self.nx, self.th // factor,
                        self.tw // factor, max(1, self.overlap // factor), max(1, self.align // factor))


def _starts(n: int, size: int, k: int, align: int) -> list[int]:
    if k == 1:
        return [0]
    step = (n - size) / (k - 1)
    return [round(i * step / align) * align for i in range(k)]


def _side(n: int, k: int, overlap: int, align: int) -> int:
    """Smallest aligned tile side that covers n with k tiles overlapping by >= overlap."""
    if k == 1:
        return n
    return min(n, math.ceil((n + (k - 1) * overlap) / k / align) * align)


def plan(height: int, width: int, max_pixels: int = DEFAULT_TILE_PIXELS, overlap: int = DEFAULT_OVERLAP,
         align: int = 1) -> TileGrid:
    """The grid with the fewest tiles of at most ``max_pixels`` each (one tile when the frame fits;
    ``max_pixels <= 0`` never tiles). height, width and overlap must be multiples of ``align``."""
    if max_pixels <= 0 or height * width <= max_pixels:
        return TileGrid(height, width, 1, 1, height, width, overlap, align)
    best = None
    for ny in range(1, height // align + 1):
        for nx in range(1, width // align + 1):
            th, tw = _side(height, ny, overlap, align), _side(width, nx, overlap, align)
            if th * tw > max_pixels:
                continue
            key = (ny * nx, abs(math.log(th / tw)))  # fewest tiles, then the squarest
            if best is None or key < best[0]:
                best = (key, TileGrid(height, width, ny, nx, th, tw, overlap, align))
            break  # more columns only add tiles
    if best is None:
        raise ValueError(f"cannot tile {width}x{height} into {max_pixels} pixel tiles")
    return best[1]


def _ramp(n: int, a: int, b: int, overlap: int, device) -> torch.Tensor:
    """Weights of the positions a..b-1 of one tile along an axis of length n: a linear ramp over
    ``overlap`` pixels on each side that borders another tile, 1 elsewhere. [b - a]"""
    i = torch.arange(a, b, device=device, dtype=torch.float32)
    w = torch.ones_like(i)
    if a > 0:
        w = torch.minimum(w, (i - a + 0.5) / overlap)
    if b < n:
        w = torch.minimum(w, (b - i - 0.5) / overlap)
    return w


def blend(grid: TileGrid, fn: Callable[[int, int, int, int], torch.Tensor]) -> torch.Tensor:
    """Run ``fn(y0, y1, x0, x1) -> [B, C, y1-y0, x1-x0]`` on every tile and blend the results into
    [B, C, height, width]; a one-tile grid returns ``fn``'s output untouched."""
    if grid.count == 1:
        return fn(0, grid.height, 0, grid.width)
    out = weight = None
    for y0, y1, x0, x1 in grid.windows():
        part = fn(y0, y1, x0, x1).float()
        if out is None:
            out = part.new_zeros(part.shape[0], part.shape[1], grid.height, grid.width)
            weight = part.new_zeros(grid.height, grid.width)
        w = _ramp(grid.height, y0, y1, grid.overlap, part.device)[:, None] * \
            _ramp(grid.width, x0, x1, grid.overlap, part.device)[None, :]
        out[..., y0:y1, x0:x1] += part * w
        weight[y0:y1, x0:x1] += w
        del part
    return out / weight
