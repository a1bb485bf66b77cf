"""What each training command optimizes: the autoencoder objective and the latent-diffusion objective.

An objective owns its trainable module (`net`, what DDP wraps and EMA tracks), computes the loss of a
batch of triplets [B, 3(frames), 3, S, S], and knows how to save its EMA weights as a model dir.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vfi_cli import checkpoint
from vfi_cli.config import LDMConfig
from vfi_cli.errors import DataError, WeightsError
from vfi_cli.losses import (PatchDiscriminator, VGGPerceptual, adaptive_gan_weight, hinge_d_loss,
                            reconstruction_loss)
from vfi_cli.schedulers import NoiseSchedule
from vfi_cli.unet import UNet
from vfi_cli.vqgan import VQGAN


class VQGANObjective:
    """L1 + SSIM + census + VQ (+ LPIPS when VGG weights are given) (+ PatchGAN after disc_start)."""

    kind = "vqgan"

    def __init__(self, cfg: LDMConfig, tc, device: torch.device):
        self.cfg, self.tc, self.device = cfg, tc, device
        self.net = VQGAN(cfg.vqgan).to(device)
        if tc.init_from:
            try:
                init, _ = checkpoint.load_autoencoder(Path(tc.init_from))
            except WeightsError as e:
                raise WeightsError(f"--init: {e}") from None
            if init.cfg.latent_fields() != cfg.vqgan.latent_fields():
                raise WeightsError(f"--init {tc.init_from} is not a {tc.preset!r} autoencoder")
            try:  # the decoder's settings (e.g. alignment) may differ, its parameters may not
                self.net.load_state_dict(init.state_dict())
            except RuntimeError:
                raise WeightsError(f"--init {tc.init_from}: its decoder's parameters differ from the "
                                   f"{tc.preset!r} preset's") from None
        if tc.freeze_encoder:
            self.net.encoder.requires_grad_(False)
            self.net.quantizer.requires_grad_(False)
        self.disc = PatchDiscriminator().to(device) if tc.disc_weight > 0 else None
        self.perceptual = VGGPerceptual(Path(tc.lpips_weights)).to(device) if tc.lpips_weights else None

    def aux_modules(self) -> dict[str, nn.Module]:
        return {"disc": self.disc} if self.disc is not None else {}

    def loss(self, batch: torch.Tensor, step: int, net: nn.Module) -> tuple[torch.Tensor, dict[str, float]]:
        x0, x1, x2 = batch.unbind(1)  # each [B, 3, S, S]
        keep = (torch.rand(x0.shape[0], device=x0.device) >= self.tc.latent_dropout).float()
        pred, vq_loss, idx = net(x0, x1, x2, keep=keep)
        terms = reconstruction_loss(pred, x1, self.tc.w_ssim, self.tc.w_census)
        terms["vq"] = vq_loss
        if self.perceptual is not None:
            terms["lpips"] = self.tc.w_lpips * self.perceptual(pred, x1)
        rec = sum(terms.values())
        total = rec
        if self.disc is not None and step >= self.tc.disc_start:
            g_loss = -self.disc(pred).mean()
            last = self._core(net).decoder.head.net[-1].weight
            w = adaptive_gan_weight(rec, g_loss, last) * self.tc.disc_weight
            terms["gan"] = w * g_loss
            total = rec + terms["gan"]
        logs = {k: v.item() for k, v in terms.items()}
        logs["codes_used"] = float(idx.unique().numel())
        self._last = (pred.detach(), x1)
        return total, logs

    def disc_loss(self, step: int) -> torch.Tensor | None:
        """Hinge loss of the discriminator on the last batch (None before disc_start)."""
        if self.disc is None or step < self.tc.disc_start:
            return None
        fake, real = self._last
        return hinge_d_loss(self.disc(real), self.disc(fake))

    @staticmethod
    def _core(net: nn.Module) -> nn.Module:
        return net.module if hasattr(net, "module") else net

    def after_step(self, step: int, batch: torch.Tensor) -> None:
        if step > 0 and step % 200 == 0 and step < self.tc.max_steps // 2 and not self.tc.freeze_encoder:
            with torch.no_grad():
                self.net.quantizer.revive_dead_codes(self.net.encoder(batch[:, 1].to(self.device)))
            if dist.is_available() and dist.is_initialized():  # every rank keeps rank 0's codebook
                dist.broadcast(self.net.quantizer.codebook.weight.data, src=0)

    def save(self, out: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        checkpoint.save_autoencoder(out, self.cfg.vqgan, state, meta)


class LDMObjective:
    """Denoising loss of the U-Net on the frozen autoencoder's scaled latents (eps or v target)."""

    kind = "ldm"

    def __init__(self, cfg: LDMConfig, tc, device: torch.device):
        self.tc, self.device = tc, device
        if tc.vqgan_dir is None:
            raise DataError("train-ldm needs --vqgan DIR (an autoencoder trained by train-vqgan)")
        try:
            self.vqgan, _ = checkpoint.load_autoencoder(Path(tc.vqgan_dir))
        except WeightsError as e:
            raise WeightsError(f"--vqgan: {e}") from None
        self.vqgan.requires_grad_(False).to(device)
        unet_cfg = replace(cfg.unet, latent_channels=self.vqgan.cfg.embed_dim)
        self.cfg = replace(cfg, vqgan=self.vqgan.cfg, unet=unet_cfg)
        multiple = self.vqgan.cfg.factor * 2 ** (len(unet_cfg.ch_mult) - 1)
        if tc.crop % multiple:
            raise DataError(f"--crop {tc.crop} must be a multiple of {multiple} for this autoencoder and U-Net "
                            f"(e.g. {max(multiple, tc.crop // multiple * multiple)})")
        self.net = UNet(unet_cfg).to(device)
        self.schedule = NoiseSchedule(self.cfg.scheduler)

    def aux_modules(self) -> dict[str, nn.Module]:
        return {}

    @torch.no_grad()
    def _latents(self, batch: torch.Tensor) -> torch.Tensor:
        b = batch.shape[0]
        z = self.vqgan.encode(batch.flatten(0, 1))  # [3B, E, h, w]
        return z.unflatten(0, (b, 3)) * self.cfg.latent_scale  # [B, 3, E, h, w]

    def calibrate(self, batch: torch.Tensor) -> float:
        """Set latent_scale so the diffusion latents have unit variance; returns it."""
        self.cfg = replace(self.cfg, latent_scale=1.0)
        std = float(self._latents(batch).std())
        self.cfg = replace(self.cfg, latent_scale=round(1.0 / max(std, 1e-6), 5))
        return self.cfg.latent_scale

    def loss(self, batch: torch.Tensor, step: int, net: nn.Module) -> tuple[torch.Tensor, dict[str, float]]:
        z = self._latents(batch)
        z0, z1, z2 = z.unbind(1)
        t = torch.randint(0, self.cfg.scheduler.num_train_timesteps, (z1.shape[0],), device=z1.device)
        noise = torch.randn_like(z1)
        out = net(z0, self.schedule.add_noise(z1, noise, t), z2, t)
        loss = F.mse_loss(out, self.schedule.target(z1, noise, t))
        return loss, {"mse": loss.item()}

    def disc_loss(self, step: int) -> None:
        return None

    def after_step(self, step: int, batch: torch.Tensor) -> None:
        pass

    def save(self, out: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        checkpoint.save_interpolator(out, self.cfg, state, Path(self.tc.vqgan_dir), meta)
