"""Denoising U-Net: out_theta(concat(z0, z1_t, z2), t) -> eps or v for the middle latent."""

from __future__ import annotations

import torch
from torch import nn

from vfi_cli.config import UNetConfig
from vfi_cli.layers import AttnBlock, Downsample, ResBlock, Upsample, group_norm, timestep_embedding


class UNet(nn.Module):
    """ResNet blocks with a sinusoidal time embedding and self-attention at the coarse levels.

    Input latents must have H and W divisible by 2 ** (len(ch_mult) - 1).
    """

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.latent_channels
        temb = cfg.ch * 4
        self.temb_ch = cfg.ch
        self.time_mlp = nn.Sequential(nn.Linear(cfg.ch, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(3 * c, cfg.ch, 3, padding=1)

        self.down = nn.ModuleList()
        skips = [cfg.ch]
        ch = cfg.ch
        for lvl, mult in enumerate(cfg.ch_mult):
            for _ in range(cfg.num_res_blocks):
                blocks = nn.ModuleList([ResBlock(ch, cfg.ch * mult, temb, cfg.dropout)])
                ch = cfg.ch * mult
                if lvl in cfg.attn_levels:
                    blocks.append(AttnBlock(ch, cfg.num_heads))
                self.down.append(blocks)
                skips.append(ch)
            if lvl < len(cfg.ch_mult) - 1:
                self.down.append(nn.ModuleList([Downsample(ch)]))
                skips.append(ch)

        self.mid = nn.ModuleList([ResBlock(ch, ch, temb, cfg.dropout), AttnBlock(ch, cfg.num_heads),
                                  ResBlock(ch, ch, temb, cfg.dropout)])

        self.up = nn.ModuleList()
        for lvl, mult in reversed(list(enumerate(cfg.ch_mult))):
            for i in range(cfg.num_res_blocks + 1):
                blocks = nn.ModuleList([ResBlock(ch + skips.pop(), cfg.ch * mult, temb, cfg.dropout)])
                ch = cfg.ch * mult
                if lvl in cfg.attn_levels:
                    blocks.append(AttnBlock(ch, cfg.num_heads))
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

    def forward(self, z0: torch.Tensor, z1_t: torch.Tensor, z2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # z0, z1_t, z2: [B, C, h, w] (scaled latents); t: [B] timesteps -> [B, C, h, w]
        emb = self.time_mlp(timestep_embedding(t, self.temb_ch))
        h = self.conv_in(torch.cat([z0, z1_t, z2], dim=1))
        hs = [h]
        for blocks in self.down:
            h = self._run(blocks, h, emb)
            hs.append(h)
        h = self._run(self.mid, h, emb)
        for blocks in self.up:
            h = self._run(blocks, torch.cat([h, hs.pop()], dim=1), emb)
        return self.conv_out(nn.functional.silu(self.norm_out(h)))
