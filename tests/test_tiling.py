"""Tiling: grids cover the frame with aligned overlapping tiles; blended tiles match one piece."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vfi_cli import tiling
from vfi_cli.interpolator import Interpolator


def test_plan_fits_small_frames_in_one_tile_and_cuts_4k_into_few_aligned_tiles():
    assert tiling.plan(1088, 1920, align=32).count == 1
    assert tiling.plan(1088, 1920, max_pixels=0).count == 1
    g = tiling.plan(2176, 3840, align=32)  # padded 4K
    assert g.count == 4 and g.th * g.tw <= tiling.DEFAULT_TILE_PIXELS
    wins = g.windows()
    cover = np.zeros((g.height, g.width), dtype=int)
    for y0, y1, x0, x1 in wins:
        assert all(v % 32 == 0 for v in (y0, y1, x0, x1))
        cover[y0:y1, x0:x1] += 1
    assert cover.min() >= 1
    # neighbours share at least the overlap (minus alignment rounding)
    assert wins[1][2] <= wins[0][3] - tiling.DEFAULT_OVERLAP + 16
    with pytest.raises(ValueError):
        tiling.plan(64, 64, max_pixels=10, overlap=16, align=32)


def test_blend_of_a_pointwise_function_is_exact_and_weights_are_seamless():
    g = tiling.plan(96, 160, max_pixels=64 * 64, overlap=16, align=16)
    assert g.count > 2
    x = torch.randn(2, 3, 96, 160)

    def fn(y0, y1, x0, x1):
        return x[..., y0:y1, x0:x1] * 2 + 1

    assert torch.allclose(tiling.blend(g, fn), x * 2 + 1, atol=1e-5)
    # constant per-tile outputs blend into a continuous surface: no jump larger than a ramp step
    wins = g.windows()
    out = tiling.blend(g, lambda y0, y1, x0, x1: torch.full((1, 1, y1 - y0, x1 - x0), float(wins.index((y0, y1, x0, x1)))))
    assert out.diff(dim=-1).abs().max() <= len(wins) / 16 + 1e-4
    assert out.diff(dim=-2).abs().max() <= len(wins) / 16 + 1e-4


def test_tiled_interpolation_matches_one_piece(tiny_weights):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1, 24, 40, 3), dtype=np.uint8)
    big = np.kron(base, np.ones((1, 8, 8, 1), dtype=np.uint8))  # smooth-ish 192x320 frames
    a, b = big, np.roll(big, 4, axis=2)
    whole = Interpolator.load(tiny_weights, device="cpu", tile_pixels=0).interpolate_pairs(a, b)
    # every tile is a whole pair (alignment, the denoiser's attention, the decoder), so the overlap must
    # cover the coarse context: 48 px (at 32 px, 3 tiles: 37.1 dB with this random model, 42.8 with v4's)
    tiled_interp = Interpolator.load(tiny_weights, device="cpu", tile_pixels=192 * 192, tile_overlap=48)
    assert tiled_interp.grid((192, 320)).count > 1
    tiled = tiled_interp.interpolate_pairs(a, b)
    err = np.abs(tiled.astype(int) - whole.astype(int))
    psnr = 10 * np.log10(255 ** 2 / max((err ** 2).mean(), 1e-9))
    assert psnr > 40, psnr  # the overlaps hide the tile borders
