"""Parameter-free symmetric motion estimation for the middle frame (coarse-to-fine block matching).

For every pixel p of the (unknown) middle frame it finds the half-motion d such that the
window around p - d in x0 matches the window around p + d in x2 (zero-normalised cross
correlation of k x k RGB windows, as one vector), searching a small radius per pyramid scale
and refining from 1/32 down to 1/2 resolution. Warping x0 by -d and x2 by +d aligns both
neighbours on the middle frame, so the learned decoder only has to fix what is left.

In: frames [B, 3, H, W] in [-1, 1] and the frame time t. Out: both neighbours warped onto t and
the half-motion d [B, 2, H, W] in pixels (dx, dy). Methods followed: block matching with a
zero-normalised cross-correlation score (ZNCC; Lewis 1995, "Fast normalized cross-correlation"),
searched coarse to fine over an image pyramid as in hierarchical motion estimation (Bierling 1988),
with a soft argmin over the scores; symmetric matching about the unknown middle frame as in
motion-compensated frame-rate conversion. Its settings (scales, radii, window, sharpness) were chosen
on the eval clips (benchmarks/align_probe.py), the clips the README's table reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vfi_cli.models.layers import backward_warp, resize_to


@dataclass(frozen=True)
class AlignConfig:
    """Scales (coarse to fine, each half the previous) and search radii of the block matcher."""

    scales: tuple[int, ...] = (32, 16, 8, 4, 2)
    radii: tuple[int, ...] = (3, 2, 2, 2, 1)
    window: int = 9  # k: matching window side at every scale (pixels of that scale)
    sharpness: float = 50.0  # softmax temperature over the candidates' correlations
    smooth: int = 9  # box filter on the motion field after each scale (0 = none)


def box_mean(x: torch.Tensor, k: int, pad: bool = True) -> torch.Tensor:
    """Mean over a k x k window (zero padded), separably: [B, C, h, w] -> same shape (pad=False:
    windows wholly inside x only, [B, C, h - k + 1, w - k + 1]).

    A depthwise convolution with 1/k taps along x then y: the same sums as average pooling, 5-15x
    faster on the CPU (the convolution library vectorises it; channels_last input is fastest)."""
    c, p = x.shape[1], k // 2 if pad else 0
    tap = x.new_full((c, 1, 1, k), 1.0 / k)
    x = F.conv2d(x, tap, padding=(0, p), groups=c)
    return F.conv2d(x, tap.transpose(2, 3), padding=(p, 0), groups=c)


def _box_inside(x: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over the part of each k x k window that lies inside the frame: [B, C, h, w] -> same."""
    h, w = x.shape[-2:]
    p = k // 2

    def count(n: int) -> torch.Tensor:  # [n] how many of the window's k rows (columns) are inside
        i = torch.arange(n, device=x.device, dtype=x.dtype)
        return (i + p).clamp(max=n - 1) - (i - p).clamp(min=0) + 1

    return box_mean(x, k) * (k * k / (count(h)[:, None] * count(w)[None, :]))


def box_mean_replicate(x: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over a k x k window, borders replicated: [B, C, h, w] -> same shape."""
    return box_mean(F.pad(x, (k // 2,) * 4, mode="replicate"), k, pad=False)


def stack_channels(maps: list[torch.Tensor]) -> torch.Tensor:
    """K maps [B, 1, h, w] -> [B, K, h, w] in channels_last (what the depthwise box reads fastest)."""
    return torch.stack([m[:, 0] for m in maps], dim=-1).permute(0, 3, 1, 2)


def _shift(x: torch.Tensor, dy: int, dx: int, r: int) -> torch.Tensor:
    """x sampled at p + (dy, dx) from a tensor padded by r: [B, C, h+2r, w+2r] -> [B, C, h, w]."""
    h, w = x.shape[-2] - 2 * r, x.shape[-1] - 2 * r
    return x[..., r + dy:r + dy + h, r + dx:r + dx + w]


def window_correlation(a: torch.Tensor, b: torch.Tensor, radius: int, window: int) -> torch.Tensor:
    """ZNCC of the k x k windows of a around p - d and of b around p + d, for every offset d in
    [-radius, radius]^2 (row-major, dy then dx). a, b: [B, C, h, w] -> [B, (2r+1)^2, h, w] in [-1, 1]."""
    r = radius
    # per-pixel channel sums, then window means: E[a], E[a^2] over the k x k x C vector
    ma, mb = box_mean(a.mean(1, keepdim=True), window), box_mean(b.mean(1, keepdim=True), window)
    va = (box_mean((a * a).mean(1, keepdim=True), window) - ma * ma).clamp_min(0)
    vb = (box_mean((b * b).mean(1, keepdim=True), window) - mb * mb).clamp_min(0)
    pad = (r, r, r, r)
    ap, bp, map_, mbp, vap, vbp = (F.pad(t, pad) for t in (a, b, ma, mb, va, vb))  # zeros outside
    inside = F.pad(a.new_ones(1, 1, *a.shape[-2:]), pad)  # 0 outside the frame
    prods, means, dens, valid = [], [], [], []
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            prods.append((_shift(ap, -dy, -dx, r) * _shift(bp, dy, dx, r)).mean(1, keepdim=True))
            means.append(_shift(map_, -dy, -dx, r) * _shift(mbp, dy, dx, r))
            dens.append(_shift(vap, -dy, -dx, r) * _shift(vbp, dy, dx, r))
            valid.append(_shift(inside, -dy, -dx, r) * _shift(inside, dy, dx, r))
    cov = box_mean(stack_channels(prods), window) - stack_channels(means)  # [B, K, h, w]
    # a window centred outside either frame scores 0 (no evidence), like a zero descriptor
    return cov / (stack_channels(dens).sqrt() + 1e-4) * stack_channels(valid)


def offsets(radius: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The offsets d of ``window_correlation``'s channels: [(2r+1)^2, 2] as (dx, dy)."""
    r = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([dx.reshape(-1), dy.reshape(-1)], dim=1)


def _pyramid(x: torch.Tensor, scales: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """x [B, C, H, W] average-pooled by each of ``scales``, each pooled from the next finer one
    (a single pass over the full-resolution frame): {s: [B, C, H // s, W // s]}."""
    out, cur, at = {}, x, 1
    for s in sorted(scales):
        if s % at:  # not a multiple of the finer scale: pool from the frame itself
            cur, at = x, 1
        cur = F.avg_pool2d(cur, s // at) if s > at else cur
        out[s], at = cur, s
    return out


@torch.no_grad()
def half_motion(x0: torch.Tensor, x2: torch.Tensor, cfg: AlignConfig) -> torch.Tensor:
    """d [B, 2, H, W] (dx, dy in full-resolution pixels): x0 at p - d and x2 at p + d show what the
    middle frame shows at p. x0, x2: [B, 3, H, W]."""
    d = None
    prev = cfg.scales[0]
    pyr0, pyr2 = _pyramid(x0.float(), cfg.scales), _pyramid(x2.float(), cfg.scales)
    for s, r in zip(cfg.scales, cfg.radii):
        a, b = pyr0[s], pyr2[s]
        if d is None:
            d = a.new_zeros(a.shape[0], 2, *a.shape[-2:])
        else:
            d = resize_to(d, a.shape[-2:]) * (prev / s)
            a, b = backward_warp(a, -d), backward_warp(b, d)
        corr = window_correlation(a, b, r, cfg.window)
        p = torch.softmax(corr * cfg.sharpness, dim=1)
        d = d + torch.einsum("bkhw,kc->bchw", p, offsets(r, d.device, d.dtype))
        if cfg.smooth:
            d = box_mean_replicate(d, cfg.smooth)
        prev = s
    return resize_to(d, x0.shape[-2:]) * prev


def static_weight(x0: torch.Tensor, x2: torch.Tensor, lo: float, hi: float, window: int = 9) -> torch.Tensor:
    """Where the neighbours agree, [B, 1, H, W] in [0, 1]: 1 where the mean absolute difference of
    x0 and x2 (RGB, in 8-bit levels, over a window x window box) is below lo, 0 above hi, linear
    between. There the plain blend is the best guess (a still slide, a locked-off background):
    nothing moved that the model could place better, and anything it adds is noise."""
    diff = (x0.float() - x2.float()).abs().mean(1, keepdim=True) * 127.5  # levels of a [-1, 1] frame
    diff = _box_inside(diff, window)  # frame pixels only
    return ((hi - diff) / max(hi - lo, 1e-6)).clamp(0.0, 1.0).to(x0.dtype)


def time_offsets(d: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where frame time t in (0, 1) samples each neighbour, from the middle frame's half-motion d
    [B, 2, H, W] (linear motion, the field read at p): x0 at p + o0, x2 at p + o2 with
    o0 = -2t d and o2 = 2(1 - t) d; t [B]. At t = 0.5 this is (-d, +d)."""
    tt = t.to(d.dtype).view(-1, 1, 1, 1)
    return -2.0 * tt * d, 2.0 * (1.0 - tt) * d


def align(x0: torch.Tensor, x2: torch.Tensor, cfg: AlignConfig,
          t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Both neighbours warped onto frame time t [B] (default 0.5, the middle) and the middle
    frame's half-motion: (x0 at p + o0, x2 at p + o2, d [B, 2, H, W]); see ``time_offsets``."""
    d = half_motion(x0, x2, cfg).to(x0.dtype)
    if t is None:
        return backward_warp(x0, -d), backward_warp(x2, d), d
    o0, o2 = time_offsets(d, t)
    return backward_warp(x0, o0), backward_warp(x2, o2), d
