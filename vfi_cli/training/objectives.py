"""What each training command optimizes: the autoencoder objective and the latent-diffusion objective.

An objective owns its trainable module (`net`, what DDP wraps and EMA tracks), computes the loss of a
batch of triplets [B, 3(frames), 3, S, S], and knows how to save its EMA weights as a model dir.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vfi_cli.models import checkpoint
from vfi_cli.models.config import LDMConfig
from vfi_cli.errors import DataError, WeightsError
from vfi_cli.training.losses import (PatchDiscriminator, VGGPerceptual, adaptive_gan_weight, hinge_d_loss,
                            reconstruction_loss)
from vfi_cli.models.sampling import chain_input, sample_latent
from vfi_cli.models.schedulers import NoiseSchedule
from vfi_cli.models.denoiser import UNet
from vfi_cli.models.autoencoder import VQGAN


WORTH_EVERY = 200  # steps between logs of the latent's worth (decoding the true latent vs noise)


def _psnr(pred: torch.Tensor, x: torch.Tensor) -> float:
    """PSNR in dB of frames in [-1, 1] (the batch pooled)."""
    mse = float(((pred.clamp(-1, 1) - x) / 2).square().mean())
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def _same_encoder(a: VQGAN, b: VQGAN) -> bool:
    """Whether two autoencoders have the same posterior encoder (so their latents mean the same)."""
    sa, sb = a.encoder.state_dict(), b.encoder.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


class VQGANObjective:
    """L1 + SSIM + census + KL (+ LPIPS when VGG weights are given) (+ PatchGAN after disc_start).

    With ``on_samples`` (decoder fine-tuning, encoder frozen), part of each batch is decoded from the
    latent that the given model's denoiser samples, so imperfect samples degrade gracefully.
    """

    kind = "vqgan"

    def __init__(self, cfg: LDMConfig, tc, device: torch.device):
        init = None
        if tc.init_from:
            try:
                init, _ = checkpoint.load_autoencoder(Path(tc.init_from))
            except WeightsError as e:
                raise WeightsError(f"--init: {e}") from None
            if init.cfg.latent_fields() != cfg.vqgan.latent_fields():
                raise WeightsError(f"--init {tc.init_from} is not a {tc.preset!r} autoencoder")
            if tc.align and tc.decoder_settings == "init":  # fine-tune the decoder as it runs (e.g. its align_smooth)
                cfg = replace(cfg, vqgan=replace(cfg.vqgan, **init.cfg.settings()))
        self.cfg, self.tc, self.device = cfg, tc, device
        self.net = VQGAN(cfg.vqgan).to(device)
        self.worth: dict[str, float] = {}
        if init is not None:
            try:  # the decoder's settings (e.g. alignment) may differ, its parameters may not
                self.net.load_state_dict(init.state_dict())
            except RuntimeError:
                raise WeightsError(f"--init {tc.init_from}: its decoder's parameters differ from the "
                                   f"{tc.preset!r} preset's") from None
        if tc.warm_start:
            self.warm_started = checkpoint.warm_start(self.net, Path(tc.warm_start))
        if tc.freeze_encoder:
            self.net.encoder.requires_grad_(False)
        self.sampler = None
        if tc.on_samples:
            if not tc.freeze_encoder:
                raise DataError("--on-samples needs --freeze-encoder (the denoiser's latents must stay valid)")
            self.sampler = _LatentSampler(Path(tc.on_samples), self.net, device, tc.sample_steps,
                                          tc.sample_temperature)
        self.disc = PatchDiscriminator().to(device) if tc.disc_weight > 0 else None
        self.perceptual = VGGPerceptual(Path(tc.lpips_weights)).to(device) if tc.lpips_weights else None

    def aux_modules(self) -> dict[str, nn.Module]:
        return {"disc": self.disc} if self.disc is not None else {}

    def loss(self, batch: torch.Tensor, t: torch.Tensor, step: int,
             net: nn.Module) -> tuple[torch.Tensor, dict[str, float]]:
        x0, x1, x2 = batch.unbind(1)  # each [B, 3, S, S]; t [B]
        resample = None
        if self.sampler is not None:
            n = int(round(self.tc.sample_mix * x0.shape[0]))
            resample = lambda pair: self.sampler(pair, n)  # noqa: E731
        pred, kl, mean = net(x0, x1, x2, t, resample=resample, free_nats=self.tc.free_nats)
        terms = reconstruction_loss(pred, x1, self.tc.w_ssim, self.tc.w_census)
        terms["kl"] = self.tc.kl_weight * kl
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
        logs["kl_nats"] = float(self._core(net).last_kl_nats)
        if step % WORTH_EVERY == 0:
            self.worth = self.latent_worth(x0, x1, x2, t, mean.detach())
        logs.update(self.worth)
        self._last = (pred.detach(), x1)
        return total, logs

    @torch.no_grad()
    def latent_worth(self, x0, x1, x2, t, mean: torch.Tensor) -> dict[str, float]:
        """PSNR of the batch decoded from the true latent (posterior mean) and from N(0, I) noise."""
        core = self._core(self.net)
        was = core.training
        core.eval()
        pair = core.prepare(x0, x2, t)
        true = _psnr(core.decode(mean, pair), x1)
        noise = _psnr(core.decode(torch.randn_like(mean), pair), x1)
        core.train(was)
        return {"psnr_true": true, "psnr_noise": noise}

    def disc_loss(self, step: int) -> torch.Tensor | None:
        """Hinge loss of the discriminator on the last batch (None before disc_start)."""
        if self.disc is None or step < self.tc.disc_start:
            return None
        fake, real = self._last
        return hinge_d_loss(self.disc(real), self.disc(fake))

    @staticmethod
    def _core(net: nn.Module) -> nn.Module:
        return net.module if hasattr(net, "module") else net

    def after_step(self, step: int, batch: torch.Tensor, t: torch.Tensor) -> None:
        pass

    def save(self, out: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        checkpoint.save_autoencoder(out, self.cfg.vqgan, state, meta)


class _LatentSampler:
    """A trained model dir's denoiser, frozen: samples latents for pairs with its default sampler
    (step count and temperature overridable)."""

    def __init__(self, model_dir: Path, vqgan: VQGAN, device: torch.device, steps: tuple[int, ...] = (),
                 temperature: float | None = None):
        self.steps = steps  # sampler step counts drawn per batch (() = the model's default)
        self.temperature = temperature  # None = the model's default
        try:
            self.cfg, ae, self.unet, _ = checkpoint.load_interpolator(model_dir)
        except WeightsError as e:
            raise WeightsError(f"--on-samples: {e}") from None
        if not _same_encoder(ae, vqgan):
            raise WeightsError(f"--on-samples {model_dir}: its autoencoder's encoder differs from --init's")
        self.unet.requires_grad_(False).to(device)

    @torch.no_grad()
    def __call__(self, pair, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(keep [B] bool: True for the first n pairs, z [B, E, h, w] unscaled sampled latents)."""
        ctx = self.unet.context(pair)
        noise = torch.randn(ctx.shape[0], self.cfg.unet.latent_channels, *ctx.shape[-2:], device=ctx.device)
        steps = self.cfg.default_steps
        if len(self.steps) == 1:
            steps = self.steps[0]
        elif self.steps:  # a step count per batch, so the decoder serves every --steps setting
            steps = self.steps[int(torch.randint(len(self.steps), ()))]
        temp = self.cfg.default_temperature if self.temperature is None else self.temperature
        z = sample_latent(self.unet, self.cfg.scheduler, ctx, noise, self.cfg.default_sampler,
                          steps, temperature=temp) / self.cfg.latent_scale
        keep = torch.arange(ctx.shape[0], device=ctx.device) < n
        return keep, z


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
        self.net = UNet(unet_cfg, self.vqgan.cfg.factor).to(device)
        self.schedule = NoiseSchedule(self.cfg.scheduler)
        self.initialised = False  # True: weights and latent scale come from --init (no calibration)
        if tc.init_from:
            self._init_from(Path(tc.init_from))

    def _init_from(self, model_dir: Path) -> None:
        """Start from a trained model dir's denoiser and latent scale (its encoder must be --vqgan's)."""
        try:
            cfg, ae, unet, data = checkpoint.load_interpolator(model_dir)
        except WeightsError as e:
            raise WeightsError(f"--init: {e}") from None
        if not _same_encoder(ae, self.vqgan):
            raise WeightsError(f"--init {model_dir}: its autoencoder's encoder differs from --vqgan's, so its "
                               "latents mean something else")
        try:
            self.net.load_state_dict(unet.state_dict())
        except RuntimeError:
            raise WeightsError(f"--init {model_dir}: its denoiser's parameters differ from the "
                               f"{self.tc.preset!r} preset's") from None
        self.cfg = replace(self.cfg, latent_scale=data.get("latent_scale", cfg.latent_scale))
        self.initialised = True

    def aux_modules(self) -> dict[str, nn.Module]:
        return {}

    @torch.no_grad()
    def _latents(self, batch: torch.Tensor, t: torch.Tensor):
        """-> (the aligned pair, scaled latents of the true middle frames [B, E, h, w])."""
        x0, x1, x2 = batch.unbind(1)
        pair = self.vqgan.prepare(x0, x2, t)
        return pair, self.vqgan.encode(x1, pair) * self.cfg.latent_scale

    def calibrate(self, batch: torch.Tensor, t: torch.Tensor) -> float:
        """Set latent_scale so the diffusion latents have unit variance; returns it."""
        self.cfg = replace(self.cfg, latent_scale=1.0)
        std = float(self._latents(batch, t)[1].std())
        self.cfg = replace(self.cfg, latent_scale=round(1.0 / max(std, 1e-6), 5))
        return self.cfg.latent_scale

    def loss(self, batch: torch.Tensor, t: torch.Tensor, step: int,
             net: nn.Module) -> tuple[torch.Tensor, dict[str, float]]:
        pair, z1 = self._latents(batch, t)
        s = torch.randint(0, self.cfg.scheduler.num_train_timesteps, (z1.shape[0],), device=z1.device)
        noise = torch.randn_like(z1)
        core = net.module if hasattr(net, "module") else net
        ctx = core.context(pair)
        z_t = self.schedule.add_noise(z1, noise, s)
        target = self.schedule.target(z1, noise, s)
        m = round(z1.shape[0] * self.tc.chain_share)  # the first m triplets train on chain states
        if m:
            x_in, t_k = self._chain_inputs(core, ctx[:m].detach(), z1[:m])
            z_t = torch.cat([x_in, z_t[m:]])
            s = torch.cat([torch.full((m,), t_k, device=s.device, dtype=s.dtype), s[m:]])
            target = torch.cat([self.schedule.output_for_x0(z1[:m], x_in, t_k), target[m:]])
        out = net(z_t, s, ctx)
        if m:  # chain states are scored in x0 space (x0 error = sqrt(1 - ab_t) v or eps error), so the
            # late steps, whose inputs hold the whole error of the chain so far, do not swamp the batch
            err = out - target  # [B, E, h, w]
            err = torch.cat([err[:m] * float(self.schedule.sqrt_1m_ab[t_k]), err[m:]])
            loss = err.square().mean()
            logs = {"chain": err[:m].square().mean().item()}
            if m < err.shape[0]:
                logs["mse"] = err[m:].square().mean().item()
        else:
            loss = F.mse_loss(out, target)
            logs = {"mse": loss.item()}
        if self.tc.decode_weight > 0:  # the frame decoded from the predicted latent, scored like the autoencoder's
            x0_pred, _ = self.schedule.predict_x0_eps(out, z_t, s)
            frame = self.vqgan.decode(x0_pred / self.cfg.latent_scale, pair)
            terms = reconstruction_loss(frame, batch[:, 1], self.tc.w_ssim, self.tc.w_census)
            pixel = sum(terms.values())
            loss = loss + self.tc.decode_weight * pixel
            logs["pixel"] = pixel.item()
        return loss, logs

    @torch.no_grad()
    def _chain_inputs(self, core: nn.Module, ctx: torch.Tensor, z1: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The denoiser's inputs at one step of its own sampling chain -> (x_in [m, E, h, w], timestep).

        The model's default sampler and temperature, n steps (a power of two in 2..chain_steps), the
        input of step k+1 for k in 1..n-1, one sign of the noise completion per triplet
        (vfi_cli.models.sampling.chain_input). Trained to return the true latent from it, every step
        after the first learns to correct the chain so far instead of reading its state as a noised
        true latent (the exposure bias of multi-step sampling)."""
        counts = [2 ** i for i in range(1, self.tc.chain_steps.bit_length())]  # 2, 4, ... <= chain_steps
        n = counts[int(torch.randint(len(counts), ()))]
        k = int(torch.randint(1, n, ()))
        e = torch.randn_like(z1)  # the chain's standard noise: x_T and the completion's direction
        sign = torch.where(torch.rand(z1.shape[0], 1, 1, 1, device=z1.device) < 0.5, -1.0, 1.0)
        was = core.training
        core.eval()
        try:
            return chain_input(core, self.cfg.scheduler, ctx, e, self.cfg.default_sampler, n, k,
                               self.cfg.default_temperature, sign)
        finally:
            core.train(was)

    def disc_loss(self, step: int) -> None:
        return None

    def after_step(self, step: int, batch: torch.Tensor, t: torch.Tensor) -> None:
        pass

    def save(self, out: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        checkpoint.save_interpolator(out, self.cfg, state, Path(self.tc.vqgan_dir), meta)
