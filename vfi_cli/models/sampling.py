"""The reverse-diffusion loop over the denoiser: scaled latent noise -> a sampled latent.

In: the denoiser, its SchedulerConfig, the context of the pairs, standard Gaussian noise of the
latent's shape, a sampler name, step count and temperature. Out: the sampled latent, still
multiplied by the model's latent_scale (the decoder takes it divided). The default (DDIM, 1 step)
makes this one U-Net call on one noise-completed input per pair (below).

Temperature scales every noise the chain draws (x_T and, for DDPM, each step's): 1 samples the
model's distribution; below 1 the chain stays nearer the conditional mean (0: deterministic, x_T = 0),
which is what PSNR and SSIM reward (benchmarks/RESULTS.md, "Sampler temperature").

Noise completion (temperature < 1). A chain at temperature T carries only T of the noise the
denoiser saw in training at each step (at 0, none: x_T = 0 and x_t = sqrt(ab_t) x0_hat), and a
denoiser fed such off-distribution inputs drifts as the chain gets longer. So every step calls the
denoiser on x_t +- sqrt(1 - T^2) sigma_t e, with e the pair's standard noise (an antithetic pair,
one batch), and steps the chain with the mean of the two x0 predictions. For a denoiser linear in
x_t (Gaussian data) that mean is the plain prediction, so the chain's target is unchanged; for a
real one it is the prediction averaged over inputs like those of training (benchmarks/RESULTS.md,
"Noise completion"). The first step is completed too, with one input, not a pair: its plain input
at temperature 0 is all zeros, which the denoiser never saw, and a chain that starts from it scores a
little lower with more steps on near-static footage (benchmarks/RESULTS.md, "The first step completed
too"). At the first timestep x_T holds sqrt(ab_T) (under 0.01) of the signal, so the prediction barely
depends on which noise it reads; on the validation clips a pair there bought 0.0025 dB for a sixth
of a default job's time (benchmarks/RESULTS.md, "One input for the first step"). At temperature 1
every step is one plain call.
"""

from __future__ import annotations

import math

import torch

from vfi_cli.models.config import SchedulerConfig
from vfi_cli.models.schedulers import Sampler, make_sampler


def completion_fill(temperature: float) -> float:
    """The share of training's noise a chain at this temperature lacks: sqrt(1 - T^2)."""
    return math.sqrt(1.0 - temperature ** 2)


def _completion_sigma(s: Sampler, t: int) -> float:
    """The noise completion's scale at timestep t: completion_fill(T) sigma_t."""
    return completion_fill(s.temperature) * float(s.schedule.sqrt_1m_ab[t])


def _denoise(unet, x: torch.Tensor, tt: torch.Tensor, ctx, autocast) -> torch.Tensor:
    if autocast is None:
        return unet(x, tt, ctx)
    with autocast():
        return unet(x, tt, ctx).float()


def _completed(unet, s: Sampler, x: torch.Tensor, t: int, ctx, noise: torch.Tensor, autocast,
               pair: bool) -> torch.Tensor:
    """The model output (eps or v for x_t = x) whose x0 is the prediction at x + fill sigma_t noise
    (pair False: the first step's one input) or the mean of the predictions at x +- fill sigma_t
    noise (pair True, one batch). x, noise: [B, C, h, w]; ctx: [B, context_ch, h, w], twice
    ([2B, ...]) for a pair, or None."""
    e = noise.to(x.dtype) * _completion_sigma(s, t)
    xs = torch.cat([x + e, x - e]) if pair else x + e  # [2B or B, C, h, w]
    tt = torch.full((xs.shape[0],), t, device=x.device, dtype=torch.long)
    x0, _ = s.schedule.predict_x0_eps(_denoise(unet, xs, tt, ctx, autocast), xs, t)
    if pair:
        x0 = 0.5 * (x0[:x.shape[0]] + x0[x.shape[0]:])  # [B, C, h, w]
    return s.schedule.output_for_x0(x0, x, t)


def sample_latent(unet, scheduler: SchedulerConfig, ctx: torch.Tensor, noise: torch.Tensor, sampler: str,
                  steps: int, generators: list[torch.Generator] | None = None, autocast=None,
                  temperature: float = 1.0, stop: int | None = None) -> torch.Tensor:
    """Run `steps` steps of `sampler` from x_T = noise * init_noise_sigma * temperature.

    ctx: [B, context_ch, h, w] (unet.context(pair)); noise: [B, C, h, w] standard Gaussian (also the
    direction of the noise completion below temperature 1); generators: one per pair for the
    stochastic samplers (DDPM). Returns the scaled latent [B, C, h, w] (divide by the model's
    latent_scale before decoding). stop: run only the first `stop` steps of the `steps`-step chain and
    return its state there, x at timestep `timesteps[stop]` (what the denoiser is trained on in
    `vfi train-ldm --chain-share`)."""
    s = make_sampler(sampler, scheduler, temperature)
    s.set_timesteps(steps)
    x = noise * (s.init_noise_sigma * s.temperature)
    fill = completion_fill(s.temperature)
    paired = fill > 0.0 and len(s.timesteps[:stop]) > 1  # steps after the first take the completion's pair
    ctx2 = torch.cat([ctx, ctx]) if ctx is not None and paired else None  # [2B, context_ch, h, w]
    for i, t in enumerate(s.timesteps[:stop]):
        t = int(t)
        if fill > 0.0:
            out = _completed(unet, s, x, t, ctx2 if i > 0 else ctx, noise, autocast, pair=i > 0)
        else:
            out = _denoise(unet, x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long), ctx, autocast)
        x = s.step(out, t, x, generator=generators)
    return x


def chain_input(unet, scheduler: SchedulerConfig, ctx: torch.Tensor, noise: torch.Tensor, sampler: str, steps: int,
                k: int, temperature: float, sign: torch.Tensor | float = 1.0) -> tuple[torch.Tensor, int]:
    """The denoiser's input at step k+1 (k in 1..steps-1) of the `steps`-step chain from `noise`:
    the chain's state after k steps plus `sign` times the noise completion (sign +1 or -1 picks one
    input of the antithetic pair) -> (x [B, C, h, w], its timestep). What `vfi train-ldm
    --chain-share` trains the denoiser on."""
    if not 1 <= k < steps:
        raise ValueError(f"k must be in 1..{steps - 1}, got {k}")
    x = sample_latent(unet, scheduler, ctx, noise, sampler, steps, temperature=temperature, stop=k)
    s = make_sampler(sampler, scheduler, temperature)
    s.set_timesteps(steps)
    t = int(s.timesteps[k])
    return x + sign * _completion_sigma(s, t) * noise, t
