"""VQGAN autoencoder whose decoder interpolates: G(z1, x0, x2) warps and blends the neighbours."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vfi_cli import motion
from vfi_cli.config import VQGANConfig
from vfi_cli.layers import ConvAct, Downsample, ResBlock, backward_warp, group_norm, resize_to


class Encoder(nn.Module):
    """x [B, 3, H, W] in [-1, 1] -> z [B, embed_dim, H/f, W/f] (continuous, before quantization)."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 4, stride=2, padding=1)  # stem: 1/2
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
        self.conv_out = nn.Conv2d(ch, cfg.embed_dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(self.blocks(self.conv_in(x)))))


class VectorQuantizer(nn.Module):
    """Cosine-similarity codebook (l2-normalized codes and inputs keep every code reachable).

    Straight-through gradients; `usage` counts code hits while training so dead codes can be
    revived from recent inputs.
    """

    def __init__(self, n_embed: int, dim: int, beta: float):
        super().__init__()
        self.beta = beta
        self.codebook = nn.Embedding(n_embed, dim)
        nn.init.normal_(self.codebook.weight)
        self.register_buffer("usage", torch.zeros(n_embed), persistent=False)

    def codes(self) -> torch.Tensor:
        return F.normalize(self.codebook.weight, dim=1)  # [K, D]

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # z: [B, D, h, w] (any norm) -> zq [B, D, h, w] (unit norm), loss [], indices [B, h, w]
        b, d, h, w = z.shape
        zf = F.normalize(z, dim=1).permute(0, 2, 3, 1).reshape(-1, d)  # [N, D]
        codes = self.codes()
        idx = (zf @ codes.t()).argmax(dim=1)  # [N]
        zq = codes[idx]
        loss = self.beta * F.mse_loss(zf, zq.detach()) + F.mse_loss(zq, zf.detach())
        if self.training:
            self.usage.add_(torch.bincount(idx, minlength=self.usage.numel()).float())
        zq = zf + (zq - zf).detach()
        return zq.reshape(b, h, w, d).permute(0, 3, 1, 2), loss, idx.reshape(b, h, w)

    @torch.no_grad()
    def revive_dead_codes(self, z: torch.Tensor) -> int:
        """Re-seed never-hit codes with random recent inputs z [B, D, h, w]; returns how many."""
        dead = (self.usage == 0).nonzero().flatten()
        if dead.numel() > 0:
            zf = F.normalize(z, dim=1).permute(0, 2, 3, 1).reshape(-1, z.shape[1])
            pick = torch.randint(0, zf.shape[0], (dead.numel(),), device=z.device)
            self.codebook.weight[dead] = zf[pick] + 0.01 * torch.randn_like(zf[pick])
        self.usage.zero_()
        return int(dead.numel())


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


class InterpolationDecoder(nn.Module):
    """G(zq1, x0, x2): per scale (1/2^L .. 1/2), warp both neighbours' features with the current
    flows, concat the latent's features, refine flows and mask; then at full resolution
    out = m*warp(x0) + (1-m)*warp(x2) + residual."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        zc = cfg.ch * cfg.ch_mult[-1]
        self.z_in = nn.Conv2d(cfg.embed_dim, zc, 3, padding=1)
        self.z_block = nn.Sequential(ResBlock(zc, zc), ResBlock(zc, zc))
        n = len(cfg.pyramid_ch)
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

    def forward(
        self, zq: torch.Tensor, feats0: list[torch.Tensor], feats2: list[torch.Tensor],
        x0: torch.Tensor, x2: torch.Tensor, return_aux: bool = False, base: torch.Tensor | None = None,
    ):
        # zq: [B, E, H/f, W/f]; feats*: pyramid of the neighbours; x0, x2: [B, 3, H, W]
        # base: optional half-motion d [B, 2, H, W] the features were aligned with (x0 at p - d,
        # x2 at p + d); the flows found here are composed with it, so x0, x2 are sampled once
        hz = self.z_block(self.z_in(zq))
        flow = mask = feat = None
        for s in reversed(range(len(self.levels))):
            f0, f2 = feats0[s], feats2[s]
            size = f0.shape[-2:]
            zs = resize_to(self.z_proj[s](hz), size)
            if flow is None:
                inp = torch.cat([f0, f2, zs], dim=1)
            else:
                flow = 2.0 * resize_to(flow, size)
                mask = resize_to(mask, size)
                feat = resize_to(feat, size)
                f0 = backward_warp(f0, flow[:, :2])
                f2 = backward_warp(f2, flow[:, 2:4])
                inp = torch.cat([f0, f2, zs, flow, mask, feat], dim=1)
            out, feat = self.levels[s](inp)
            flow = out[:, :4] if flow is None else flow + out[:, :4]
            mask = out[:, 4:5] if mask is None else mask + out[:, 4:5]
        size = x0.shape[-2:]
        flow = 2.0 * resize_to(flow, size)  # [B, 4, H, W] pixels at full resolution
        m = torch.sigmoid(resize_to(mask, size))
        if base is not None:  # p + f(p) in aligned coordinates is p + f(p) -/+ d(p + f(p)) in x0 / x2
            flow = flow + torch.cat([backward_warp(-base, flow[:, :2]), backward_warp(base, flow[:, 2:4])], dim=1)
        warped0 = backward_warp(x0, flow[:, :2], self.warp_mode)
        warped2 = backward_warp(x2, flow[:, 2:4], self.warp_mode)
        residual = self.head(torch.cat([warped0, warped2, m, resize_to(feat, size)], dim=1))
        pred = m * warped0 + (1.0 - m) * warped2 + residual  # [B, 3, H, W]
        if return_aux:
            return pred, {"flow": flow, "mask": m, "residual": residual}
        return pred


class VQGAN(nn.Module):
    """Encoder + quantizer + neighbour pyramid + interpolation decoder (inference parts only)."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        if len(cfg.pyramid_ch) != len(cfg.flow_ch):
            raise ValueError("pyramid_ch and flow_ch need one entry per scale")
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = VectorQuantizer(cfg.n_embed, cfg.embed_dim, cfg.beta)
        self.pyramid = NeighbourPyramid(cfg)
        self.decoder = InterpolationDecoder(cfg)
        if len(cfg.align_scales) != len(cfg.align_radii):
            raise ValueError("align_scales and align_radii need one entry per scale")
        self.align = motion.AlignConfig(cfg.align_scales, cfg.align_radii, cfg.align_window, cfg.align_sharpness,
                                        cfg.align_smooth) if cfg.align_scales else None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, H, W] -> unit-norm continuous latent [B, E, H/f, W/f] (what diffusion models)."""
        return F.normalize(self.encoder(x), dim=1)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.quantizer(z)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Neighbour pyramid of frames x [B, 3, H, W]."""
        return self.pyramid(x)

    @property
    def shares_features(self) -> bool:
        """True when a frame's pyramid can be computed once and reused by both of its pairs
        (not with alignment: the decoder sees each pair's neighbours warped onto their middle)."""
        return self.align is None

    def interpolate(self, zq, x0, x2, feats0=None, feats2=None, return_aux: bool = False):
        """Middle frame [B, 3, H, W] from its quantized latent and the neighbours x0, x2 (aligned on
        the middle first when the config says so; then feats0/feats2 are ignored)."""
        if self.align is None:
            feats0 = self.features(x0) if feats0 is None else feats0
            feats2 = self.features(x2) if feats2 is None else feats2
            return self.decoder(zq, feats0, feats2, x0, x2, return_aux=return_aux)
        w0, w2, d = motion.align(x0, x2, self.align)  # d: [B, 2, H, W]
        return self.decoder(zq, self.features(w0), self.features(w2), x0, x2, return_aux=return_aux, base=d)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, keep: torch.Tensor | None = None):
        """Reconstruct the middle frame from its own latent and the neighbours: (x1_hat, vq_loss, idx).

        keep: optional [B] 0/1 weights on the latent (0 = decode from the neighbours alone).
        """
        zq, vq_loss, idx = self.quantize(self.encode(x1))
        if keep is not None:
            zq = zq * keep[:, None, None, None]
        return self.interpolate(zq, x0, x2), vq_loss, idx
