"""Procedural training triplets with exactly known motion (`--data synthetic[:N]`).

Out: uint8 [3, S, S, 3] frames at t = 0, 1, 2 (``render``), or float32 [3, 3, S, S] in [-1, 1]
(``__getitem__``, like every training dataset): textured shapes that move and turn linearly over
a moving textured background, x1 rendered exactly at the middle time. Deterministic per
(seed, epoch, index).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vfi_cli.errors import DataError
from vfi_cli.frames import to_tensor
from vfi_cli.training.augment import Seeded

DEFAULT_SYNTHETIC_N = 2000


def _texture(rng: np.random.Generator, size: int) -> torch.Tensor:
    """[3, size, size] in [0, 1]: multi-octave colour noise + a random grating (built at <= 64 px)."""
    base = min(size, 64)
    tex = torch.zeros(1, 3, 2, 2)
    k = 2
    while k < base:  # noise pyramid: 4, 8, ..., base px
        k = min(2 * k, base)
        tex = F.interpolate(tex, size=(k, k), mode="bilinear", align_corners=False)
        tex += torch.from_numpy(rng.random((1, 3, k, k), dtype=np.float32)) / math.sqrt(k)
    ys, xs = torch.meshgrid(torch.arange(base, dtype=torch.float32), torch.arange(base, dtype=torch.float32),
                            indexing="ij")
    f = rng.uniform(2, 12, 2) * 2 * math.pi / base
    tex += float(rng.uniform(0, 0.6)) * torch.sin(f[0] * xs + f[1] * ys + float(rng.uniform(0, 6.3)))
    if base < size:
        tex = F.interpolate(tex, size=(size, size), mode="bicubic", align_corners=False)
    tex = (tex[0] - tex.mean((2, 3))[0, :, None, None]) / (tex.std() + 1e-6)
    colour = torch.from_numpy(rng.uniform(0.15, 0.85, (3, 1, 1)).astype(np.float32))
    return (colour + float(rng.uniform(0.08, 0.25)) * tex).clamp(0, 1)


def _sample(tex: torch.Tensor, x: torch.Tensor, y: torch.Tensor, padding: str) -> torch.Tensor:
    """Bilinear sample tex [3, T, T] at pixel coords x, y [S, S] (pixel centres at integers) -> [3, S, S]."""
    t = tex.shape[-1]
    grid = torch.stack([(2 * x + 1) / t - 1, (2 * y + 1) / t - 1], dim=-1)[None]  # [1, S, S, 2]
    return F.grid_sample(tex[None], grid, mode="bilinear", padding_mode=padding, align_corners=False)[0]


def _velocity(rng: np.random.Generator, size: int) -> np.ndarray:
    """px/frame: half sub-pixel-to-small, half large (up to size/6)."""
    speed = rng.uniform(0, 2) if rng.random() < 0.5 else rng.uniform(2, max(size / 6, 2.5))
    a = rng.uniform(0, 2 * math.pi)
    return np.array([speed * math.cos(a), speed * math.sin(a)])


class SyntheticTriplets(Seeded):
    """Procedural triplets: textured shapes moving (and turning) linearly over a moving textured
    background; x1 is rendered exactly at t = 1/2. Deterministic per (seed, epoch, index)."""

    def __init__(self, n: int = DEFAULT_SYNTHETIC_N, size: int = 64, seed: int = 0):
        if n < 1 or size < 8:
            raise DataError(f"synthetic data needs n >= 1 and size >= 8 (got n={n}, size={size})")
        self.n, self.size, self.seed = n, size, seed

    def __len__(self) -> int:
        return self.n

    def render(self, rng: np.random.Generator) -> np.ndarray:
        """uint8 [3, S, S, 3] frames at t = 0, 1, 2 (x1 the exact middle)."""
        s = self.size
        ys, xs = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32),
                                indexing="ij")
        bg = _texture(rng, 2 * s)
        bg_off = rng.uniform(0, s, 2)
        bg_v = _velocity(rng, s) if rng.random() < 0.8 else np.zeros(2)
        shapes = []
        for _ in range(int(rng.integers(1, 5))):
            half = rng.uniform(s / 10, s / 4, 2)  # half width, half height
            tsz = int(2 * half.max()) + 4
            shapes.append(dict(tex=_texture(rng, tsz), half=half, c=rng.uniform(0, s, 2), v=_velocity(rng, s),
                               a=rng.uniform(0, math.pi), w=rng.uniform(-0.15, 0.15),
                               ellipse=rng.random() < 0.5))
        out = []
        for t in (0.0, 1.0, 2.0):
            img = _sample(bg, xs + float(bg_off[0] + bg_v[0] * t), ys + float(bg_off[1] + bg_v[1] * t), "reflection")
            for sh in shapes:
                cx, cy = sh["c"] + sh["v"] * t
                hx, hy = (float(v) for v in sh["half"])
                r = math.hypot(hx, hy) + 2  # bounding box of the shape at any angle
                y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, s)
                x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, s)
                if y0 >= y1 or x0 >= x1:
                    continue  # outside the frame
                bx, by = xs[y0:y1, x0:x1], ys[y0:y1, x0:x1]
                ang = sh["a"] + sh["w"] * t
                ca, sa = math.cos(ang), math.sin(ang)
                lx = ca * (bx - cx) + sa * (by - cy)  # shape-local coordinates
                ly = -sa * (bx - cx) + ca * (by - cy)
                if sh["ellipse"]:
                    edge = (1 - torch.sqrt((lx / hx) ** 2 + (ly / hy) ** 2)) * min(hx, hy)
                else:
                    edge = torch.minimum(hx - lx.abs(), hy - ly.abs())
                alpha = (edge + 0.5).clamp(0, 1)  # 1-px anti-aliased edge
                tc = sh["tex"].shape[-1] / 2
                fg = _sample(sh["tex"], lx + tc - 0.5, ly + tc - 0.5, "border")
                img[:, y0:y1, x0:x1] = alpha * fg + (1 - alpha) * img[:, y0:y1, x0:x1]
            out.append(img)
        x = torch.stack(out)  # [3, 3, S, S] in [0, 1]
        return (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return to_tensor(self.render(self.rng(index)))  # [3, 3, S, S]

    def describe(self) -> str:
        return f"synthetic: {self.n} triplets of {self.size}x{self.size}"
