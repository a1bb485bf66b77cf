"""Run-time refinement of the decoder's motion: align the two warped neighbours with each other.

The decoder's flows come from 1/2 resolution and leave the two warped neighbours a fraction of a
pixel apart; their blend is then a blur. Symmetric Lucas-Kanade (Lucas & Kanade 1981; Baker &
Matthews 2004) solves, per pixel over a window, for the correction delta [B, 2, H, W] of the new
frame's half-motion that makes x0 warped by f0 + 2t delta match x2 warped by f2 - 2(1-t) delta (at
t = 1/2: +-delta, the motion-compensated frame stays in the middle). No parameters; the settings are
the decoder config's refine_* fields (chosen on the validation clips, benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vfi_cli.models.layers import backward_warp, cat_channels
from vfi_cli.models.motion import box_mean_replicate, stack_channels


@dataclass(frozen=True)
class RefineConfig:
    """iters Gauss-Newton steps over a window x window box; lam (squared 8-bit levels per pixel of the
    box) damps flat regions towards no change; each step moves by at most max_step pixels a side."""

    iters: int = 2
    window: int = 15
    lam: float = 4.0
    max_step: float = 1.0


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of [B, C, H, W] -> (d/dx, d/dy), each [B, C, H, W]."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) * 0.5, (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) * 0.5


def _inside(flow: torch.Tensor) -> torch.Tensor:
    """[B, 2, H, W] backward flow -> [B, 1, H, W]: 1 where p + flow lies inside the frame, else 0."""
    h, w = flow.shape[-2:]
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype) + flow[:, 0]
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype)[:, None] + flow[:, 1]
    return ((xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)).to(flow.dtype)[:, None]


def align_warps(x0: torch.Tensor, x2: torch.Tensor, flow: torch.Tensor, t: torch.Tensor, cfg: RefineConfig,
                mode: str = "bilinear") -> torch.Tensor:
    """flow [B, 4, H, W] (pixels; [:, :2] warps x0, [:, 2:] warps x2) refined so that the two warped
    frames x0, x2 [B, 3, H, W] in [-1, 1] agree; t [B] the new frame's time. Runs in float32. The
    steps' own warps default to bilinear: on the validation clips as good as bicubic, and cheaper."""
    with torch.autocast(flow.device.type, enabled=False):
        x0, x2, flow = x0.float(), x2.float(), flow.float()
        tt = t.float().view(-1, 1, 1, 1)
        a0, a2 = 2.0 * tt, 2.0 * (1.0 - tt)  # how far each warp moves per unit of delta
        for _ in range(cfg.iters):
            w0 = backward_warp(x0, flow[:, :2], mode) * 127.5  # 8-bit levels, so lam has a unit
            w2 = backward_warp(x2, flow[:, 2:4], mode) * 127.5
            g0x, g0y = _gradients(w0)
            g2x, g2y = _gradients(w2)
            gx, gy = a0 * g0x + a2 * g2x, a0 * g0y + a2 * g2y  # d(w0 - w2)/d delta, [B, 3, H, W] each
            r = w0 - w2
            # where either warp samples outside the frame (content entering at a border), the two
            # cannot agree: those pixels stay out of the sums, or they would drag the motion
            valid = _inside(flow[:, :2]) * _inside(flow[:, 2:4])  # [B, 1, H, W]
            gx, gy = gx * valid, gy * valid
            # normal equations of sum_box |r + g . delta|^2 + lam |delta|^2, summed over channels;
            # the sixth map is the share of the window that both warps see
            sums = box_mean_replicate(stack_channels([(gx * gx).sum(1, keepdim=True), (gx * gy).sum(1, keepdim=True),
                                        (gy * gy).sum(1, keepdim=True), (gx * r).sum(1, keepdim=True),
                                        (gy * r).sum(1, keepdim=True), valid]), cfg.window)  # [B, 6, H, W]
            sxx, sxy, syy, bx, by, seen = sums.unbind(1)
            sxx, syy = sxx + cfg.lam, syy + cfg.lam
            det = sxx * syy - sxy * sxy  # > 0: lam > 0 makes the system positive definite
            delta = torch.stack([(sxy * by - syy * bx) / det, (sxy * bx - sxx * by) / det], 1)  # [B, 2, H, W]
            # trusted in proportion to the share of the window that both warps see (near a border,
            # where content enters, less: a synthetic pan lost 0.35 dB there without this)
            delta = delta.clamp(-cfg.max_step, cfg.max_step) * seen[:, None]
            flow = flow + cat_channels([a0 * delta, -a2 * delta])
    return flow
