"""Building blocks shared by the autoencoder and the denoiser: [B, C, H, W] in, [B, C', H', W'] out.

ResBlock with a time embedding and self-attention follow the DDPM / latent-diffusion U-Net
(Ho et al. 2020; Rombach et al. 2022); the sinusoidal embedding is the Transformer's (Vaswani et
al. 2017). backward_warp samples at x + flow (backward flow, pixels, float32 grid) as RIFE's and
IFNet's warp does (Huang et al. 2022).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def group_norm(ch: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= 32 that divides ch (>= 4 channels per group)."""
    groups = max(1, min(32, ch // 4))
    while ch % groups:
        groups -= 1
    return nn.GroupNorm(groups, ch, eps=1e-6)


class ResBlock(nn.Module):
    """Pre-activation residual block; adds a projected time embedding when temb_ch > 0."""

    def __init__(self, in_ch: int, out_ch: int, temb_ch: int = 0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.temb = nn.Linear(temb_ch, out_ch) if temb_ch > 0 else None
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        # x: [B, in_ch, H, W], temb: [B, temb_ch] -> [B, out_ch, H, W]
        h = self.conv1(F.silu(self.norm1(x)))
        if self.temb is not None and temb is not None:
            h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Multi-head self-attention over the spatial positions, residual: over all of them, or, with
    window > 0 and a map wider or taller than window, within each cell of a grid of near-equal
    windows of at most window x window positions (the cost grows with the map's area, not its square)."""

    def __init__(self, ch: int, num_heads: int = 4, window: int = 0):
        super().__init__()
        assert ch % num_heads == 0, "channels must divide into heads"
        self.num_heads = num_heads
        self.window = window
        self.norm = group_norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def _attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """qkv [B, h, w, 3C] -> softmax attention over all h * w positions [B, h, w, C]."""
        b, h, w, c3 = qkv.shape
        # tokens with the head dim innermost ([B, heads, HW, d], stride 1 on d): what the fused
        # (flash) attention kernels take; a layout with d strided falls back to the slow math path
        q, k, v = qkv.reshape(b, h * w, 3, self.num_heads, c3 // (3 * self.num_heads)).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # [B, heads, HW, d]
        return out.transpose(1, 2).reshape(b, h, w, c3 // 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).permute(0, 2, 3, 1)  # [B, h, w, 3C]
        if self.window and max(h, w) > self.window:
            out = qkv.new_empty(b, h, w, c)
            for y0, y1 in _bands(h, self.window):
                for x0, x1 in _bands(w, self.window):
                    out[:, y0:y1, x0:x1] = self._attend(qkv[:, y0:y1, x0:x1])
        else:
            out = self._attend(qkv)
        return x + self.proj(out.permute(0, 3, 1, 2))  # [B, C, H, W] (channels_last)


def _bands(n: int, window: int) -> list[tuple[int, int]]:
    """[0, n) cut into ceil(n / window) bands whose sizes differ by at most one: [(start, end)]."""
    k = -(-n // window)
    edges = [i * n // k for i in range(k + 1)]
    return list(zip(edges[:-1], edges[1:]))


class Downsample(nn.Module):
    """Strided 3x3 conv: [B, C, H, W] -> [B, C, H/2, W/2]."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest x2 then 3x3 conv: [B, C, H, W] -> [B, C, 2H, 2W]."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ConvAct(nn.Sequential):
    """3x3 conv + LeakyReLU: the cheap block of the full-resolution flow estimator."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__(nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1), nn.LeakyReLU(0.1, inplace=True))


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps: [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def backward_warp(img: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample img at (x + flow): img [B, C, H, W], flow [B, 2, H, W] in pixels (dx, dy), a backward flow
    (each output pixel says where in img it comes from); borders replicate. mode "bicubic" keeps more
    texture (used for the final warp of the frames).

    The sampling grid and the sampling run in float32 even under bf16/fp16 autocast: bf16 holds 8
    significant bits, so pixel coordinates of a 1080p frame would round by up to 4 px (the grid
    is normalised to [-1, 1], which still leaves ~1 px). The result has img's dtype."""
    b, _, h, w = img.shape
    with torch.autocast(img.device.type, enabled=False):
        flow = flow.float()
        ys = torch.arange(h, device=img.device, dtype=torch.float32)
        xs = torch.arange(w, device=img.device, dtype=torch.float32)
        gx = (xs[None, None, :] + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
        gy = (ys[None, :, None] + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
        grid = torch.stack([gx, gy], dim=-1)  # [B, H, W, 2] float32
        out = F.grid_sample(img.float(), grid, mode=mode, padding_mode="border", align_corners=True)
    return out.to(img.dtype)


def resize_to(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to (H, W); identity when already that size."""
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False)


def cat_channels(xs: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat(xs, dim=1) for [B, C_i, H, W] tensors. When most channels are the innermost dim
    of their tensor (channels_last, the CPU layout), it concatenates NHWC views along the last
    dim: the same values, 2-4x faster than torch.cat's path, and channels_last for the next conv."""
    inner = sum(x.shape[1] for x in xs if x.dim() == 4 and x.shape[1] > 1 and x.stride(1) == 1)
    if len(xs) > 1 and 2 * inner >= sum(x.shape[1] for x in xs):
        return torch.cat([x.permute(0, 2, 3, 1) for x in xs], dim=3).permute(0, 3, 1, 2)
    return torch.cat(xs, dim=1)
