"""Autoencoder of the middle frame given its neighbours, whose decoder interpolates.

Frames are [B, 3, H, W] in [-1, 1]; t [B] is the new frame's time in (0, 1) between x0 (t = 0)
and x2 (t = 1). Flows are in pixels (dx, dy) and backward: a frame warped by f samples the
source at p + f(p). Pyramids are finest first (1/2, 1/4, ...).

- ``prepare`` aligns both neighbours on time t with the parameter-free block matcher
  (vfi_cli/models/motion.py) and builds the decoder's feature pyramids of the aligned frames.
- The posterior encoder q(z | x1, x0', x2', t) sees the true frame beside the aligned neighbours,
  like RIFE's privileged teacher (Huang et al., ECCV 2022), so the latent z [B, E, H/4, W/4]
  codes what the neighbours cannot tell: motion corrections, occlusions, new content. It is
  KL-regularised towards N(0, I) (Kingma & Welling 2014; Rombach et al., LDM 2022), which is
  what the denoiser samples at inference, without x1.
- The decoder G(z, x0, x2, t) refines flows and an occlusion mask coarse to fine (IFNet, RIFE)
  with the latent injected at every scale, then out = m * warp(x0) + (1 - m) * warp(x2) + r
  (optionally after a parameter-free step that aligns the two warps with each other: models/refine.py).
  Vocabulary as in RIFE's IFNet: flow[:, :2] warps x0, flow[:, 2:4] warps x2, mask m in [0, 1].
- The whole is LDMVFI's design (Danier et al., AAAI 2024: a VQ-FIGAN autoencoder whose decoder
  sees the neighbours, and a latent denoiser), with LDMVFI's weakness avoided: its decoder gives
  nearly the same frame from any latent (EDEN, CVPR 2025); here the latent adds to the flows and
  the mask, so the decoder needs it (`vfi eval --latent oracle|noise`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vfi_cli.models import motion, refine
from vfi_cli.models.config import VQGANConfig
from vfi_cli.models.layers import ConvAct, Downsample, ResBlock, backward_warp, cat_channels, group_norm, resize_to


@dataclass
class Pair:
    """Two neighbours prepared for the frame at time t (what every later stage reads)."""

    x0: torch.Tensor  # [B, 3, H, W] the earlier frame
    x2: torch.Tensor  # [B, 3, H, W] the later frame
    t: torch.Tensor  # [B] time of the new frame in (0, 1)
    w0: torch.Tensor  # [B, 3, H, W] x0 aligned on time t (x0 itself without alignment)
    w2: torch.Tensor  # [B, 3, H, W] x2 aligned on time t
    d: torch.Tensor | None  # [B, 2, H, W] the block matcher's half-motion of the middle frame (None: no alignment)
    feats0: list[torch.Tensor]  # pyramid of w0, finest first
    feats2: list[torch.Tensor]  # pyramid of w2

    def time_plane(self, hw: tuple[int, int]) -> torch.Tensor:
        """t broadcast to a [B, 1, h, w] input plane."""
        return self.t.to(self.x0.dtype).view(-1, 1, 1, 1).expand(-1, 1, *hw)


class PosteriorEncoder(nn.Module):
    """(x1, x0', x2', t) -> (mean, log-variance) of q(z | ...), each [B, E, H/f, W/f]."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        c = cfg.in_channels
        self.conv_in = nn.Conv2d(5 * c + 1, cfg.ch, 4, stride=2, padding=1)  # stem: 1/2
        blocks: list[nn.Module] = []
        ch = cfg.ch
        for i, mult in enumerate(cfg.ch_mult):
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResBlock(ch, cfg.ch * mult))
                ch = cfg.ch * mult
            if i < len(cfg.ch_mult) - 1:
                blocks.append(Downsample(ch))
        blocks.append(ResBlock(ch, ch))
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = group_norm(ch)
        self.conv_out = nn.Conv2d(ch, 2 * cfg.embed_dim, 3, padding=1)
        # start at z = 0 with little noise: the decoder begins as a latent-free interpolator
        nn.init.zeros_(self.conv_out.weight)
        nn.init.constant_(self.conv_out.bias[cfg.embed_dim:], -4.0)
        nn.init.zeros_(self.conv_out.bias[:cfg.embed_dim])

    def forward(self, x1: torch.Tensor, pair: Pair) -> tuple[torch.Tensor, torch.Tensor]:
        inp = cat_channels([x1, pair.w0, pair.w2, x1 - pair.w0, x1 - pair.w2, pair.time_plane(x1.shape[-2:])])
        h = self.conv_out(F.silu(self.norm_out(self.blocks(self.conv_in(inp)))))
        mean, logvar = h.chunk(2, dim=1)
        return mean, logvar.clamp(-20.0, 10.0)


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor, free_nats: float = 0.0) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) in nats per element, averaged: [B, E, h, w] -> [].

    free_nats: a channel whose mean KL is below this costs nothing ("free bits", Kingma et al.
    2016), so the posterior does not collapse onto the prior before the decoder learns to read it."""
    kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)
    per_channel = kl.mean(dim=(0, 2, 3))  # [E]
    return per_channel.clamp_min(free_nats).mean() if free_nats > 0 else per_channel.mean()


class NeighbourPyramid(nn.Module):
    """x [B, 3, H, W] -> features at scales 1/2, 1/4, ..., 1/2^L with pyramid_ch channels."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        levels = []
        prev = cfg.in_channels
        for ch in cfg.pyramid_ch:
            levels.append(nn.Sequential(ConvAct(prev, ch, stride=2), ConvAct(ch, ch)))
            prev = ch
        self.levels = nn.ModuleList(levels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats


class FlowLevel(nn.Module):
    """One coarse-to-fine step: refine flows (t->0, t->1), mask logit and a feature map."""

    def __init__(self, in_ch: int, ch: int):
        super().__init__()
        self.inp = ConvAct(in_ch, ch)
        self.body = nn.Sequential(ConvAct(ch, ch), ConvAct(ch, ch))
        self.head = nn.Conv2d(ch, 5, 3, padding=1)
        nn.init.zeros_(self.head.weight)  # start as a plain blend: zero flow, mask 0.5
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.inp(x)
        h = h + self.body(h)
        return self.head(h), h


class ResidualHead(nn.Module):
    """Full resolution: [warped x0, warped x2, mask, upsampled features] -> RGB residual."""

    def __init__(self, feat_ch: int, ch: int):
        super().__init__()
        self.net = nn.Sequential(ConvAct(7 + feat_ch, ch), ConvAct(ch, ch), nn.Conv2d(ch, 3, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


FLOW_UNIT = 1.0  # pixels at the latent's resolution per latent unit of the flow channels


class InterpolationDecoder(nn.Module):
    """G(zq1, x0, x2): per scale (1/2^L .. 1/2), warp both neighbours' features with the current
    flows, concat the latent's features, refine flows and mask; then at full resolution
    out = m*warp(x0) + (1-m)*warp(x2) + residual."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        n = len(cfg.pyramid_ch)
        # the pyramid level at the latent's resolution: there z[:, 0:4] adds to the two flows (in
        # FLOW_UNIT pixels) and z[:, 4] to the mask logit, so the latent steers the motion directly
        # and the reconstruction gradient reaches the encoder as a motion signal from the first step
        self.z_level = cfg.factor.bit_length() - 2  # factor 4 -> level 1 (1/4)
        if not 0 <= self.z_level < n - 1 or cfg.embed_dim < 5:
            raise ValueError("the latent needs >= 5 channels at a pyramid level finer than the coarsest")
        zc = cfg.z_ch
        self.z_in = nn.Conv2d(cfg.embed_dim + 1, zc, 3, padding=1)  # latent + time plane
        self.z_block = nn.Sequential(ResBlock(zc, zc), ResBlock(zc, zc))
        self.z_proj = nn.ModuleList(nn.Conv2d(zc, max(4, cfg.flow_ch[s] // 2), 1) for s in range(n))
        levels = []
        for s in range(n):
            coarsest = s == n - 1
            in_ch = 2 * cfg.pyramid_ch[s] + max(4, cfg.flow_ch[s] // 2)
            if not coarsest:
                in_ch += 5 + cfg.flow_ch[s + 1]  # flows, mask, upsampled features of the coarser level
            levels.append(FlowLevel(in_ch, cfg.flow_ch[s]))
        self.levels = nn.ModuleList(levels)
        self.head = ResidualHead(cfg.flow_ch[0], cfg.head_ch)
        if cfg.warp_mode not in ("bilinear", "bicubic"):
            raise ValueError(f"warp_mode must be bilinear or bicubic, not {cfg.warp_mode!r}")
        self.warp_mode = cfg.warp_mode
        self.static_gate = cfg.static_gate
        if cfg.refine_iters and (cfg.refine_window < 1 or cfg.refine_window % 2 == 0 or cfg.refine_lambda <= 0):
            raise ValueError("refine_window must be odd and refine_lambda > 0")
        self.refine = refine.RefineConfig(cfg.refine_iters, cfg.refine_window, cfg.refine_lambda, cfg.refine_max)

    def forward(self, z: torch.Tensor, pair: Pair) -> torch.Tensor:
        """z [B, E, H/f, W/f] (unscaled latent) and the prepared pair -> the frame at t [B, 3, H, W]."""
        hz = self.z_block(self.z_in(cat_channels([z, pair.time_plane(z.shape[-2:])])))
        flow = mask = feat = None
        for s in reversed(range(len(self.levels))):
            f0, f2 = pair.feats0[s], pair.feats2[s]
            size = f0.shape[-2:]
            zs = resize_to(self.z_proj[s](hz), size)
            if flow is None:
                inp = cat_channels([f0, f2, zs])
            else:
                flow = 2.0 * resize_to(flow, size)
                mask = resize_to(mask, size)
                feat = resize_to(feat, size)
                if s == self.z_level:
                    zs_direct = resize_to(z, size)
                    flow = flow + FLOW_UNIT * zs_direct[:, :4]
                    mask = mask + zs_direct[:, 4:5]
                f0 = backward_warp(f0, flow[:, :2])
                f2 = backward_warp(f2, flow[:, 2:4])
                inp = cat_channels([f0, f2, zs, flow, mask, feat])
            out, feat = self.levels[s](inp)
            flow = out[:, :4] if flow is None else flow + out[:, :4]
            mask = out[:, 4:5] if mask is None else mask + out[:, 4:5]
        x0, x2 = pair.x0, pair.x2
        size = x0.shape[-2:]
        flow = 2.0 * resize_to(flow, size)  # [B, 4, H, W] pixels at full resolution, in aligned coordinates
        m = torch.sigmoid(resize_to(mask, size))
        if pair.d is not None:  # p + f(p) in aligned coordinates is p + f(p) + o(p + f(p)) in x0 / x2
            o0, o2 = motion.time_offsets(pair.d, pair.t)
            flow = flow + cat_channels([backward_warp(o0, flow[:, :2]), backward_warp(o2, flow[:, 2:4])])
        if self.refine.iters:  # the two warps a fraction of a pixel apart would blend into a blur
            flow = refine.align_warps(x0, x2, flow, pair.t, self.refine).to(flow.dtype)
        warped0 = backward_warp(x0, flow[:, :2], self.warp_mode)
        warped2 = backward_warp(x2, flow[:, 2:4], self.warp_mode)
        residual = self.head(cat_channels([warped0, warped2, m, resize_to(feat, size)]))
        out = m * warped0 + (1.0 - m) * warped2 + residual  # [B, 3, H, W]
        if self.static_gate:  # where the neighbours agree, the blend at t
            g = motion.static_weight(x0, x2, *self.static_gate)
            tt = pair.t.to(x0.dtype).view(-1, 1, 1, 1)
            out = out + g * ((1.0 - tt) * x0 + tt * x2 - out)
        return out


class VQGAN(nn.Module):
    """Posterior encoder + neighbour pyramid + interpolating decoder (the block matcher has no
    parameters). Inference samples z with the denoiser and calls ``prepare`` then ``decode``."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        if len(cfg.pyramid_ch) != len(cfg.flow_ch):
            raise ValueError("pyramid_ch and flow_ch need one entry per scale")
        if len(cfg.align_scales) != len(cfg.align_radii):
            raise ValueError("align_scales and align_radii need one entry per scale")
        self.cfg = cfg
        self.encoder = PosteriorEncoder(cfg)
        self.pyramid = NeighbourPyramid(cfg)
        self.decoder = InterpolationDecoder(cfg)
        self.align = motion.AlignConfig(cfg.align_scales, cfg.align_radii, cfg.align_window, cfg.align_sharpness,
                                        cfg.align_smooth) if cfg.align_scales else None

    def prepare(self, x0: torch.Tensor, x2: torch.Tensor, t: torch.Tensor | None = None) -> Pair:
        """Align x0, x2 [B, 3, H, W] on time t [B] (default 0.5) and build the decoder's pyramids."""
        if t is None:
            t = x0.new_full((x0.shape[0],), 0.5)
        if self.align is None:
            w0, w2, d = x0, x2, None
        else:
            w0, w2, d = motion.align(x0, x2, self.align, t)
        return Pair(x0, x2, t, w0, w2, d, self.pyramid(w0), self.pyramid(w2))

    def posterior(self, x1: torch.Tensor, pair: Pair) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, logvar) of q(z | x1, pair), each [B, E, H/f, W/f]."""
        return self.encoder(x1, pair)

    def encode(self, x1: torch.Tensor, pair: Pair) -> torch.Tensor:
        """The latent of the true frame x1 [B, 3, H, W] at the pair's time: the posterior mean
        (what the denoiser learns to sample, and the `oracle` of `vfi eval --latent`)."""
        return self.encoder(x1, pair)[0]

    def decode(self, z: torch.Tensor, pair: Pair) -> torch.Tensor:
        """The frame at the pair's time [B, 3, H, W] from a latent z [B, E, H/f, W/f]."""
        return self.decoder(z, pair)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, t: torch.Tensor | None = None,
                resample=None, free_nats: float = 0.0):
        """Training pass: (x1_hat [B, 3, H, W], KL term [], posterior mean [B, E, h, w]); z is drawn
        from the posterior (reparameterised), so the decoder learns to tolerate latent noise.
        resample(pair) -> (keep [B] bool, z [B, E, h, w]) replaces the latent where keep is True
        (decoder fine-tuning on a denoiser's samples)."""
        pair = self.prepare(x0, x2, t)
        mean, logvar = self.posterior(x1, pair)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        if resample is not None:
            keep, sampled = resample(pair)
            z = torch.where(keep[:, None, None, None], sampled.to(z.dtype), z)
        self.last_kl_nats = kl_divergence(mean.detach(), logvar.detach())  # [] what the latent costs, unclamped
        return self.decode(z, pair), kl_divergence(mean, logvar, free_nats), mean
