"""Denoising U-Net: out_theta(concat(z1_t, c), s) -> eps or v for the new frame's latent.

The condition c [B, context_ch, H/f, W/f] is computed once per pair by ``ContextStem`` from what
the neighbours tell without the true frame: both neighbours aligned on the frame time by the
block matcher, their difference (large where the alignment failed: occlusions, non-linear
motion), the matcher's motion and the frame time t. The sampler then runs only the U-Net.

In: the noisy scaled latent z1_t [B, E, H/f, W/f], timesteps s [B], the context c. Out: eps or v
(config.prediction_type) shaped like z1_t. Architecture: the latent-diffusion U-Net (Ronneberger
et al. 2015; Ho et al. 2020; Rombach et al. 2022) of ResBlocks with a time embedding and
self-attention at the coarsest levels, conditioned by concatenation as in LDMVFI (Danier et al.,
AAAI 2024).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vfi_cli.models.config import UNetConfig
from vfi_cli.models.layers import (AttnBlock, ConvAct, Downsample, ResBlock, Upsample, cat_channels, group_norm,
                            timestep_embedding)


class ContextStem(nn.Module):
    """Pair (aligned neighbours, motion, t) at [B, *, H, W] -> c [B, context_ch, H/f, W/f]."""

    MOTION_SCALE = 1.0 / 16.0  # pixels of half-motion -> input units

    def __init__(self, context_ch: int, factor: int):
        super().__init__()
        layers: list[nn.Module] = []
        ch = 12  # w0, w2, w0 - w2, d, t
        for _ in range(int(math.log2(factor))):
            layers.append(ConvAct(ch, context_ch, stride=2))
            ch = context_ch
        layers.append(nn.Conv2d(ch, context_ch, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, pair) -> torch.Tensor:
        d = pair.d if pair.d is not None else pair.w0.new_zeros(pair.w0.shape[0], 2, *pair.w0.shape[-2:])
        inp = cat_channels([pair.w0, pair.w2, pair.w0 - pair.w2, d * self.MOTION_SCALE,
                            pair.time_plane(pair.w0.shape[-2:])])
        return self.net(inp)


class UNet(nn.Module):
    """ResNet blocks with a sinusoidal time embedding and self-attention at the coarse levels.

    Input latents must have H and W divisible by 2 ** (len(ch_mult) - 1).
    """

    def __init__(self, cfg: UNetConfig, factor: int):
        super().__init__()
        self.cfg = cfg
        c = cfg.latent_channels
        temb = cfg.ch * 4
        self.temb_ch = cfg.ch
        self.time_mlp = nn.Sequential(nn.Linear(cfg.ch, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.context = ContextStem(cfg.context_ch, factor)  # factor: the autoencoder's latent downsampling
        self.conv_in = nn.Conv2d(c + cfg.context_ch, cfg.ch, 3, padding=1)

        self.down = nn.ModuleList()
        skips = [cfg.ch]
        ch = cfg.ch
        for lvl, mult in enumerate(cfg.ch_mult):
            for _ in range(cfg.num_res_blocks):
                blocks = nn.ModuleList([ResBlock(ch, cfg.ch * mult, temb, cfg.dropout)])
                ch = cfg.ch * mult
                if lvl in cfg.attn_levels:
                    blocks.append(AttnBlock(ch, cfg.num_heads, cfg.attn_window))
                self.down.append(blocks)
                skips.append(ch)
            if lvl < len(cfg.ch_mult) - 1:
                self.down.append(nn.ModuleList([Downsample(ch)]))
                skips.append(ch)

        self.mid = nn.ModuleList([ResBlock(ch, ch, temb, cfg.dropout), AttnBlock(ch, cfg.num_heads, cfg.attn_window),
                                  ResBlock(ch, ch, temb, cfg.dropout)])

        self.up = nn.ModuleList()
        for lvl, mult in reversed(list(enumerate(cfg.ch_mult))):
            for i in range(cfg.num_res_blocks + 1):
                blocks = nn.ModuleList([ResBlock(ch + skips.pop(), cfg.ch * mult, temb, cfg.dropout)])
                ch = cfg.ch * mult
                if lvl in cfg.attn_levels:
                    blocks.append(AttnBlock(ch, cfg.num_heads, cfg.attn_window))
                if lvl > 0 and i == cfg.num_res_blocks:
                    blocks.append(Upsample(ch))
                self.up.append(blocks)

        self.norm_out = group_norm(ch)
        self.conv_out = nn.Conv2d(ch, c, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def stride(self) -> int:
        return 2 ** (len(self.cfg.ch_mult) - 1)

    @staticmethod
    def _run(blocks: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for block in blocks:
            h = block(h, emb) if isinstance(block, ResBlock) else block(h)
        return h

    def forward(self, z_t: torch.Tensor, s: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        # z_t: [B, C, h, w] noisy scaled latent; s: [B] diffusion timesteps; ctx: [B, context_ch, h, w]
        # (from self.context(pair)) -> eps or v [B, C, h, w]
        emb = self.time_mlp(timestep_embedding(s, self.temb_ch))
        h = self.conv_in(cat_channels([z_t, ctx]))
        hs = [h]
        for blocks in self.down:
            h = self._run(blocks, h, emb)
            hs.append(h)
        h = self._run(self.mid, h, emb)
        for blocks in self.up:
            h = self._run(blocks, cat_channels([h, hs.pop()]), emb)
        return self.conv_out(nn.functional.silu(self.norm_out(h)))
