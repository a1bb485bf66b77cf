"""Diffusion noise schedule and samplers (DDPM, DDIM, DPM-Solver++(2M)): small objects, no weights.

In: a SchedulerConfig (T, betas, eps- or v-prediction) and, per step, the denoiser's output for
x_t at timestep t. Out: x at the next (smaller) sampling timestep; the last step lands on the clean
sample. The denoiser is trained once on `NoiseSchedule`; any sampler can run it, because every
sampler turns the model output into (x0, eps) the same way.

Papers and equations:
  forward process q(x_t | x0) = N(sqrt(ab_t) x0, (1 - ab_t) I): Ho et al. 2020 (DDPM), eq. 4;
  ancestral step from the posterior q(x_t' | x_t, x0): DDPM eqs. 6-7 and Algorithm 2, respaced
      for n < T steps as in Nichol & Dhariwal 2021 (improved DDPM), whose eq. 17 is the cosine
      schedule;
  DDIM step with sigma = 0 (deterministic): Song et al. 2021, eq. 12;
  v-prediction, v = sqrt(ab) eps - sqrt(1 - ab) x0: Salimans & Ho 2022 (progressive distillation);
  DPM-Solver++(2M), data prediction, multistep: Lu et al. 2022, Algorithm 2;
  "trailing" timestep spacing (the first step starts at t = T-1, pure noise): Lin et al. 2024,
      "Common diffusion noise schedules and sample steps are flawed", Table 2.

Sample loop (vfi_cli.models.sampling):

    sampler.set_timesteps(n)
    x = torch.randn(shape) * sampler.init_noise_sigma
    for t in sampler.timesteps:
        x = sampler.step(model(x, t), int(t), x, generator)

Coefficients are computed in float64 and cast to the dtype/device of `x`.
"""

from __future__ import annotations

import math

import torch

from vfi_cli.models.config import SchedulerConfig


def _broadcast(values: torch.Tensor, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
    """values[t] shaped to broadcast against x ([B] -> [B, 1, 1, ...]), in x's dtype/device."""
    if isinstance(t, torch.Tensor):
        v = values[t.detach().to("cpu", torch.long).reshape(-1)]  # [B] or [1]
    else:
        v = values[int(t)].reshape(1)  # [1]
    return v.reshape(-1, *([1] * (x.dim() - 1))).to(device=x.device, dtype=x.dtype)


class NoiseSchedule:
    """The forward process q(x_t | x0) = N(sqrt(ab_t) x0, (1 - ab_t) I) of a SchedulerConfig."""

    def __init__(self, cfg: SchedulerConfig):
        T = cfg.num_train_timesteps
        if T < 1:
            raise ValueError(f"num_train_timesteps must be >= 1, got {T}")
        if cfg.prediction_type not in ("eps", "v"):
            raise ValueError(f"unknown prediction_type {cfg.prediction_type!r}; choose eps or v")
        if cfg.beta_schedule == "linear":
            if not 0.0 < cfg.beta_start <= cfg.beta_end < 1.0:
                raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {cfg.beta_start}, {cfg.beta_end}")
            betas = torch.linspace(cfg.beta_start, cfg.beta_end, T, dtype=torch.float64)
        elif cfg.beta_schedule == "cosine":
            # Nichol & Dhariwal (2021): ab(t) = cos^2(((t/T + s) / (1 + s)) * pi/2), s = 0.008
            def f(i: int) -> float:
                return math.cos((i / T + 0.008) / 1.008 * math.pi / 2) ** 2

            betas = torch.tensor([min(1.0 - f(i + 1) / f(i), 0.999) for i in range(T)],
                                 dtype=torch.float64)
        else:
            raise ValueError(f"unknown beta_schedule {cfg.beta_schedule!r}; choose linear or cosine")
        self.cfg = cfg
        self.num_train_timesteps = T
        self.prediction_type = cfg.prediction_type
        self.betas = betas  # [T] float64
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)  # [T] float64
        self.sqrt_ab = self.alphas_cumprod.sqrt()  # [T]
        self.sqrt_1m_ab = (1.0 - self.alphas_cumprod).sqrt()  # [T]

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) noise. x0, noise: [B, ...]; t: [B] long or int."""
        return _broadcast(self.sqrt_ab, t, x0) * x0 + _broadcast(self.sqrt_1m_ab, t, x0) * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """Training target: eps, or v = sqrt(ab_t) eps - sqrt(1 - ab_t) x0."""
        if self.prediction_type == "eps":
            return noise
        return _broadcast(self.sqrt_ab, t, x0) * noise - _broadcast(self.sqrt_1m_ab, t, x0) * x0

    def predict_x0_eps(self, model_out: torch.Tensor, x_t: torch.Tensor,
                       t: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        """Model output (eps or v, per prediction_type) -> (x0, eps), both shaped like x_t."""
        a = _broadcast(self.sqrt_ab, t, x_t)
        s = _broadcast(self.sqrt_1m_ab, t, x_t)
        if self.prediction_type == "eps":
            eps = model_out
            x0 = (x_t - s * eps) / a
        else:  # v: x0 = a x_t - s v, eps = s x_t + a v (since a^2 + s^2 = 1)
            x0 = a * x_t - s * model_out
            eps = s * x_t + a * model_out
        return x0, eps

    def output_for_x0(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """The model output (eps or v) that predicts x0 from x_t: the inverse of predict_x0_eps's x0."""
        a = _broadcast(self.sqrt_ab, t, x_t)
        s = _broadcast(self.sqrt_1m_ab, t, x_t)
        if self.prediction_type == "eps":
            return (x_t - a * x0) / s
        return (a * x_t - x0) / s  # from x0 = a x_t - s v


def _noise_like(x: torch.Tensor, generator) -> torch.Tensor:
    """Standard normal noise shaped like x, drawn on the generator's device (reproducible across devices).

    generator: None, a torch.Generator, or a list with one generator per batch item (so each
    item's noise does not depend on what else is in the batch).
    """
    if isinstance(generator, (list, tuple)):
        return torch.cat([_noise_like(x[i:i + 1], g) for i, g in enumerate(generator)])
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


class Sampler:
    """Base sampler: trailing timesteps over a NoiseSchedule; subclasses implement `step`."""

    init_noise_sigma = 1.0

    def __init__(self, cfg: SchedulerConfig, temperature: float = 1.0):
        if not 0.0 <= temperature <= 1.0:
            raise ValueError(f"sampler temperature {temperature} is outside [0, 1]")
        self.temperature = temperature  # scale of the noise a stochastic step adds (and of x_T: sampling.py)
        self.schedule = NoiseSchedule(cfg)
        self.num_train_timesteps = cfg.num_train_timesteps
        self.set_timesteps(self.num_train_timesteps)

    def set_timesteps(self, n: int) -> None:
        """Choose n sampling steps: t_i = round((n - i) T / n) - 1, i = 0..n-1 (descending, t_0 = T-1)."""
        T = self.num_train_timesteps
        if not 1 <= n <= T:
            raise ValueError(f"number of sampling steps must be in [1, {T}], got {n}")
        ts = [(2 * T * (n - i) + n) // (2 * n) - 1 for i in range(n)]  # round half up, integers only
        self.num_inference_steps = n
        self.timesteps = torch.tensor(ts, dtype=torch.long)  # [n] descending
        self._index = {t: i for i, t in enumerate(ts)}

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        return self.schedule.add_noise(x0, noise, t)

    def _prev(self, t: int) -> tuple[int, float, float]:
        """(index of t, ab_t, ab at the next timestep in the sampling order; 1.0 after the last)."""
        t = int(t)
        if t not in self._index:
            raise ValueError(f"timestep {t} is not in this sampler's timesteps; call set_timesteps first")
        i = self._index[t]
        ab = self.schedule.alphas_cumprod
        ab_prev = float(ab[self.timesteps[i + 1]]) if i + 1 < len(self.timesteps) else 1.0
        return i, float(ab[t]), ab_prev

    def _x0_eps(self, model_out: torch.Tensor, t: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted (x0, eps) (latents are unbounded: x0 is not clipped)."""
        return self.schedule.predict_x0_eps(model_out, x, t)

    def step(self, model_out: torch.Tensor, t: int, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """One reverse step: x_t [B, C, H, W] -> x at the previous sampling timestep."""
        raise NotImplementedError


class DDPMSampler(Sampler):
    """Ancestral sampling (Ho et al. 2020, Algorithm 2) with posterior variance "fixed_small".

    With n < T steps the process is respaced: between consecutive sampling steps
    t -> t', beta_eff = 1 - ab_t / ab_t' (Nichol & Dhariwal 2021), so few-step DDPM is valid.
    """

    def step(self, model_out: torch.Tensor, t: int, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        _, ab_t, ab_prev = self._prev(t)
        x0, _ = self._x0_eps(model_out, int(t), x)
        beta = 1.0 - ab_t / ab_prev  # respaced beta_t
        # posterior q(x_t' | x_t, x0): mean = c0 x0 + ct x_t, var = beta (1 - ab_t') / (1 - ab_t)
        c0 = math.sqrt(ab_prev) * beta / (1.0 - ab_t)
        ct = math.sqrt(1.0 - beta) * (1.0 - ab_prev) / (1.0 - ab_t)
        mean = c0 * x0 + ct * x
        var = beta * (1.0 - ab_prev) / (1.0 - ab_t)
        if var <= 0.0:  # last step: no noise
            return mean
        return mean + (math.sqrt(var) * self.temperature) * _noise_like(x, generator)


class DDIMSampler(Sampler):
    """DDIM (Song et al. 2021) with sigma = 0: deterministic, the generator is not used."""

    def step(self, model_out: torch.Tensor, t: int, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        _, ab_t, ab_prev = self._prev(t)
        x0, eps = self._x0_eps(model_out, int(t), x)
        return math.sqrt(ab_prev) * x0 + math.sqrt(1.0 - ab_prev) * eps  # eq. 12, sigma_t = 0


class DPMSolverSampler(Sampler):
    """DPM-Solver++(2M) (Lu et al. 2022): multistep, data prediction, deterministic.

    First order (= DDIM) on the first step and on the final step to the clean sample;
    second order in between, reusing the previous step's x0 prediction.
    """

    def set_timesteps(self, n: int) -> None:
        super().set_timesteps(n)
        self._last: tuple[int, float, torch.Tensor] | None = None  # (index, lambda, x0) of the last step

    @staticmethod
    def _lambda(ab: float) -> float:
        """Half log-SNR: log(alpha / sigma)."""
        return 0.5 * math.log(ab / (1.0 - ab))

    def step(self, model_out: torch.Tensor, t: int, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        i, ab_t, ab_next = self._prev(t)
        d0, _ = self._x0_eps(model_out, int(t), x)  # data prediction D0 = x0
        last, self._last = self._last, None
        if ab_next >= 1.0:  # final step to sigma = 0: x = D0 (lambda -> inf)
            return d0
        lam_t, lam_n = self._lambda(ab_t), self._lambda(ab_next)
        self._last = (i, lam_t, d0)
        h = lam_n - lam_t
        d = d0
        if last is not None and last[0] == i - 1:  # 2M: D = D0 + (D0 - D1) / (2r), r = h_prev / h
            r = (lam_t - last[1]) / h
            d = d0 + (d0 - last[2]) / (2.0 * r)
        # x' = (sigma'/sigma) x + alpha' (1 - e^-h) D
        ratio = math.sqrt((1.0 - ab_next) / (1.0 - ab_t))
        return ratio * x + math.sqrt(ab_next) * (-math.expm1(-h)) * d


SAMPLERS: dict[str, type[Sampler]] = {"ddpm": DDPMSampler, "ddim": DDIMSampler, "dpm": DPMSolverSampler}


def make_sampler(name: str, cfg: SchedulerConfig, temperature: float = 1.0) -> Sampler:
    """Build a sampler by name (ddpm | ddim | dpm) at a noise temperature in [0, 1]."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name](cfg, temperature)
