"""Parameter-free motion alignment: windowed ZNCC against a direct reference, recovered motion."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vfi_cli.models import motion


def _reference(a, b, radius, k):
    """Cosine of mean-removed k x k x C windows, unfolded explicitly (zero outside the frame)."""
    def windows(x):
        w = F.unfold(x, k, padding=k // 2).view(x.shape[0], -1, *x.shape[-2:])
        return F.normalize(w - w.mean(1, keepdim=True), dim=1)

    wa, wb = windows(a), windows(b)
    h, w = a.shape[-2:]
    out = torch.zeros(a.shape[0], (2 * radius + 1) ** 2, h, w)
    i = 0
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            for y in range(h):
                for x in range(w):
                    ya, xa, yb, xb = y - dy, x - dx, y + dy, x + dx
                    if 0 <= ya < h and 0 <= xa < w and 0 <= yb < h and 0 <= xb < w:
                        out[:, i, y, x] = (wa[:, :, ya, xa] * wb[:, :, yb, xb]).sum(1)
            i += 1
    return out


def test_window_correlation_matches_explicit_windows():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 9, 11, generator=g), torch.rand(1, 3, 9, 11, generator=g)
    got = motion.window_correlation(a, b, radius=2, window=5)
    assert got.shape == (1, 25, 9, 11)
    assert torch.allclose(got, _reference(a, b, 2, 5), atol=2e-3)


def _scene(h, w, seed=0):
    """Texture with structure at every scale (4 to 32 px), like real footage."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(1, 3, h, w)
    for cell in (4, 8, 16, 32):
        coarse = torch.rand(1, 3, h // cell + 1, w // cell + 1, generator=g) * 2 - 1
        out += F.interpolate(coarse, scale_factor=cell, mode="bicubic", align_corners=False)[..., :h, :w] / 2
    return out.clamp(-1, 1)


def test_half_motion_recovers_a_pan_far_beyond_the_finest_search_radius():
    scene = _scene(160, 256)
    x0, x1, x2 = scene[..., 16:144, 24:216], scene[..., 16:144, 36:228], scene[..., 16:144, 48:240]  # 12 px/frame
    cfg = motion.AlignConfig(scales=(16, 8, 4, 2), radii=(2, 2, 2, 1), window=7, smooth=3)
    d = motion.half_motion(x0, x2, cfg)
    inner = d[..., 24:-24, 24:-24]
    # x1(p) = x0(p + 12) = x2(p - 12) along x: d = (-12, 0)
    assert (inner[:, 0] + 12).abs().median() < 0.5 and inner[:, 1].abs().median() < 0.5
    w0, w2, _ = motion.align(x0, x2, cfg)
    err_aligned = (0.5 * (w0 + w2) - x1)[..., 24:-24, 24:-24].abs().mean()
    err_blend = (0.5 * (x0 + x2) - x1)[..., 24:-24, 24:-24].abs().mean()
    assert err_aligned < 0.2 * err_blend


def test_still_frames_stay_put():
    x = _scene(64, 96)
    d = motion.half_motion(x, x, motion.AlignConfig(scales=(8, 4, 2), radii=(2, 1, 1), window=5, smooth=3))
    assert d.abs().max() < 0.05
