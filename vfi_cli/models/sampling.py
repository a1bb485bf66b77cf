"""The reverse-diffusion loop over the denoiser: scaled latent noise -> a sampled latent.

In: the denoiser, its SchedulerConfig, the context of the pairs, standard Gaussian noise of the
latent's shape, a sampler name, step count and temperature. Out: the sampled latent, still
multiplied by the model's latent_scale (the decoder takes it divided). The default (DDIM, 1 step)
makes this one U-Net call per pair.

Temperature scales every noise the chain draws (x_T and, for DDPM, each step's): 1 samples the
model's distribution; below 1 the chain stays nearer the conditional mean (0: deterministic, x_T = 0),
which is what PSNR and SSIM reward (benchmarks/RESULTS.md, "Sampler temperature").
"""

from __future__ import annotations

import torch

from vfi_cli.models.config import SchedulerConfig
from vfi_cli.models.schedulers import make_sampler


def sample_latent(unet, scheduler: SchedulerConfig, ctx: torch.Tensor, noise: torch.Tensor, sampler: str,
                  steps: int, generators: list[torch.Generator] | None = None, autocast=None,
                  temperature: float = 1.0) -> torch.Tensor:
    """Run `steps` steps of `sampler` from x_T = noise * init_noise_sigma * temperature.

    ctx: [B, context_ch, h, w] (unet.context(pair)); noise: [B, C, h, w] standard Gaussian;
    generators: one per pair for the stochastic samplers (DDPM). Returns the scaled latent [B, C, h, w]
    (divide by the model's latent_scale before decoding)."""
    s = make_sampler(sampler, scheduler, temperature)
    s.set_timesteps(steps)
    x = noise * (s.init_noise_sigma * s.temperature)
    for t in s.timesteps:
        tt = torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long)
        if autocast is None:
            out = unet(x, tt, ctx)
        else:
            with autocast():
                out = unet(x, tt, ctx).float()
        x = s.step(out, int(t), x, generator=generators)
    return x
