"""Noise schedule and samplers: golden values, parameterization round trips, oracle sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vfi_cli.models.config import SchedulerConfig
from vfi_cli.models.schedulers import (SAMPLERS, DDIMSampler, DDPMSampler, DPMSolverSampler, NoiseSchedule,
                                       Sampler, make_sampler)

LINEAR = SchedulerConfig(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
SHAPE = (2, 4, 8, 8)  # [B, C, H, W]


def cfg_for(pred: str, schedule: str = "linear") -> SchedulerConfig:
    return SchedulerConfig(beta_schedule=schedule, prediction_type=pred)


def run_loop(sampler: Sampler, model, x: torch.Tensor, n: int, generator=None) -> torch.Tensor:
    """The pipeline's sample loop."""
    sampler.set_timesteps(n)
    for t in sampler.timesteps:
        x = sampler.step(model(x, t), int(t), x, generator)
    return x


def oracle(schedule: NoiseSchedule, x0: torch.Tensor):
    """A perfect denoiser for a single known x0: returns the true eps (or v) of x_t."""
    def model(x, t):
        ab = float(schedule.alphas_cumprod[int(t)])
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        return eps if schedule.prediction_type == "eps" else math.sqrt(ab) * eps - math.sqrt(1 - ab) * x0
    return model


MU, STD = 0.3, 0.5  # data distribution N(MU, STD^2) per element: its denoiser is exact and linear


def gaussian_denoiser(schedule: NoiseSchedule):
    """E[x0 | x_t] for Gaussian data, returned as eps or v."""
    def model(x, t):
        ab = float(schedule.alphas_cumprod[int(t)])
        a, s = math.sqrt(ab), math.sqrt(1 - ab)
        x0 = MU + a * STD ** 2 / (ab * STD ** 2 + 1 - ab) * (x - a * MU)
        eps = (x - a * x0) / s
        return eps if schedule.prediction_type == "eps" else a * eps - s * x0
    return model


# ---------------------------------------------------------------- schedules

def test_linear_alphas_cumprod_golden():
    ab = NoiseSchedule(LINEAR).alphas_cumprod
    assert ab.shape == (1000,)
    betas = np.linspace(1e-4, 0.02, 1000)
    for i in (0, 499, 999):
        ref = 1.0
        for b in betas[: i + 1]:
            ref *= 1.0 - b
        assert float(ab[i]) == pytest.approx(ref, rel=1e-10)
    # hard-coded once (and matching the plain product above)
    assert float(ab[0]) == pytest.approx(0.9999, rel=1e-12)
    assert float(ab[499]) == pytest.approx(7.8587242882e-02, rel=1e-9)
    assert float(ab[999]) == pytest.approx(4.0358297654e-05, rel=1e-9)
    assert torch.all(ab[1:] < ab[:-1])


def test_cosine_schedule_golden():
    s = NoiseSchedule(cfg_for("eps", "cosine"))
    ab = s.alphas_cumprod

    def f(t):  # Nichol & Dhariwal: ab(t) = f(t) / f(0)
        return math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2

    for i in (0, 250, 500, 750):  # away from the 0.999 clip, ab[i] = f(i+1) / f(0)
        assert float(ab[i]) == pytest.approx(f(i + 1) / f(0), rel=1e-9)
    assert float(ab[0]) == pytest.approx(0.99995871578, rel=1e-9)
    assert float(ab[500]) == pytest.approx(0.49228517245, rel=1e-9)
    assert float(ab[998]) == pytest.approx(2.4287669070e-06, rel=1e-7)
    assert float(s.betas.max()) == pytest.approx(0.999)  # the last beta is clipped
    assert float(ab[999]) == pytest.approx(float(ab[998]) * 0.001, rel=1e-9)


@pytest.mark.parametrize("bad", [dict(beta_schedule="quadratic"), dict(prediction_type="x0"),
                                 dict(num_train_timesteps=0), dict(beta_start=0.0)])
def test_bad_config_raises(bad):
    with pytest.raises(ValueError):
        NoiseSchedule(SchedulerConfig(**bad))


# ---------------------------------------------------------------- timesteps

def test_trailing_timesteps_golden():
    s = DDIMSampler(LINEAR)
    s.set_timesteps(4)
    assert s.timesteps.tolist() == [999, 749, 499, 249]
    assert s.timesteps.dtype == torch.long
    s.set_timesteps(3)
    assert s.timesteps.tolist() == [999, 666, 332]
    s.set_timesteps(10)
    assert s.timesteps.tolist() == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    s.set_timesteps(1)
    assert s.timesteps.tolist() == [999]
    tiny = DPMSolverSampler(SchedulerConfig(num_train_timesteps=50))
    tiny.set_timesteps(4)
    assert tiny.timesteps.tolist() == [49, 37, 24, 12]


def test_ddpm_strided_timesteps_golden():
    s = DDPMSampler(LINEAR)
    assert s.timesteps.tolist() == list(range(999, -1, -1))  # default: all T steps
    s.set_timesteps(4)
    assert s.timesteps.tolist() == [999, 749, 499, 249]
    s.set_timesteps(8)
    assert s.timesteps.tolist() == [999, 874, 749, 624, 499, 374, 249, 124]
    s.set_timesteps(50)
    assert len(set(s.timesteps.tolist())) == 50 and s.timesteps[0] == 999 and s.timesteps[-1] == 19
    for n in (0, 1001):
        with pytest.raises(ValueError):
            s.set_timesteps(n)


def test_step_rejects_unknown_timestep():
    s = DDIMSampler(LINEAR)
    s.set_timesteps(4)
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="timestep"):
        s.step(x, 500, x)


# ---------------------------------------------------------------- parameterization

@pytest.mark.parametrize("pred", ["eps", "v"])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_add_noise_target_round_trip(pred, schedule):
    s = NoiseSchedule(cfg_for(pred, schedule))
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    noise = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 999])  # [B]
    x_t = s.add_noise(x0, noise, t)
    rec_x0, rec_eps = s.predict_x0_eps(s.target(x0, noise, t), x_t, t)
    torch.testing.assert_close(rec_x0, x0, atol=1e-5, rtol=0)
    torch.testing.assert_close(rec_eps, noise, atol=1e-5, rtol=0)
    # float32, at a moderate t (eps prediction amplifies errors by 1/sqrt(ab) near t = T)
    t32 = torch.tensor([10, 500])
    x32, n32 = x0.float(), noise.float()
    r0, re = s.predict_x0_eps(s.target(x32, n32, t32), s.add_noise(x32, n32, t32), t32)
    assert r0.dtype == torch.float32
    torch.testing.assert_close(r0, x32, atol=1e-5, rtol=0)
    torch.testing.assert_close(re, n32, atol=1e-5, rtol=0)


def test_add_noise_and_v_target_formula():
    s = NoiseSchedule(cfg_for("v"))
    x0, noise = torch.full((1, 1, 1, 1), 2.0), torch.full((1, 1, 1, 1), -1.0)
    t = torch.tensor([499])
    a, b = math.sqrt(7.8587242882e-02), math.sqrt(1 - 7.8587242882e-02)
    assert s.add_noise(x0, noise, t).item() == pytest.approx(a * 2.0 - b, rel=1e-6)
    assert s.target(x0, noise, t).item() == pytest.approx(-a - b * 2.0, rel=1e-6)
    assert s.add_noise(x0, noise, 499).item() == pytest.approx(a * 2.0 - b, rel=1e-6)  # int t
    assert NoiseSchedule(cfg_for("eps")).target(x0, noise, t).item() == -1.0


# ---------------------------------------------------------------- oracle sampling

@pytest.mark.parametrize("pred", ["eps", "v"])
@pytest.mark.parametrize("name", ["ddim", "dpm", "ddpm"])
@pytest.mark.parametrize("n", [4, 10, 50])
def test_oracle_recovers_x0(pred, name, n):
    sampler = make_sampler(name, cfg_for(pred))
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(SHAPE, generator=g) * 0.8 + 0.2
    x = torch.randn(SHAPE, generator=g) * sampler.init_noise_sigma
    out = run_loop(sampler, oracle(sampler.schedule, x0), x, n, g)
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)


def test_ddpm_full_1000_steps_oracle():
    sampler = DDPMSampler(cfg_for("v"))
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(1, 4, 4, 4, generator=g)
    out = run_loop(sampler, oracle(sampler.schedule, x0), torch.randn(1, 4, 4, 4, generator=g), 1000, g)
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)


def test_dpm_oracle_trajectory_equals_ddim():
    """With a perfect x0 the ODE solution is exact for both: intermediate states must agree."""
    cfg = cfg_for("v")
    ddim, dpm = DDIMSampler(cfg), DPMSolverSampler(cfg)
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    model = oracle(ddim.schedule, x0)
    ddim.set_timesteps(10)
    dpm.set_timesteps(10)
    a = b = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    for t in ddim.timesteps:
        a, b = ddim.step(model(a, t), int(t), a), dpm.step(model(b, t), int(t), b)
        torch.testing.assert_close(a, b, atol=1e-9, rtol=0)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_probability_flow_ode_gaussian_data(schedule):
    """Gaussian data: the ODE endpoint is known in closed form; DPM-Solver++ converges faster than DDIM."""
    cfg = cfg_for("v", schedule)
    g = torch.Generator().manual_seed(5)
    xT = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    abT = float(NoiseSchedule(cfg).alphas_cumprod[-1])
    exact = MU + STD * (xT - math.sqrt(abT) * MU) / math.sqrt(abT * STD ** 2 + 1 - abT)
    err = {}
    for name in ("ddim", "dpm"):
        for n in (10, 20, 50):
            s = make_sampler(name, cfg)
            err[name, n] = (run_loop(s, gaussian_denoiser(s.schedule), xT, n) - exact).abs().max().item()
    for n in (10, 20, 50):
        assert err["dpm", n] < err["ddim", n]
    for name in ("ddim", "dpm"):
        assert err[name, 50] < err[name, 20] < err[name, 10]
    assert err["dpm", 50] < 5e-3  # measured: 1.7e-3 (linear), 2.2e-3 (cosine)
    assert err["ddim", 50] < 0.1  # measured: 0.090 (linear), 0.049 (cosine)


def test_ddpm_samples_the_data_distribution():
    """Ancestral sampling with the exact Gaussian denoiser reproduces N(MU, STD^2)."""
    s = DDPMSampler(cfg_for("v"))
    g = torch.Generator().manual_seed(6)
    x = run_loop(s, gaussian_denoiser(s.schedule), torch.randn(4, 4, 32, 32, generator=g), 1000, g)
    assert x.mean().item() == pytest.approx(MU, abs=0.02)
    assert x.std().item() == pytest.approx(STD, abs=0.02)


# ---------------------------------------------------------------- determinism

def test_ddpm_generator_determinism():
    s = DDPMSampler(cfg_for("v"))
    model = gaussian_denoiser(s.schedule)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    a = run_loop(s, model, x, 20, torch.Generator().manual_seed(11))
    b = run_loop(s, model, x, 20, torch.Generator().manual_seed(11))
    c = run_loop(s, model, x, 20, torch.Generator().manual_seed(12))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-2


@pytest.mark.parametrize("name", ["ddim", "dpm"])
def test_deterministic_samplers_ignore_generator_and_reset(name):
    """DDIM and DPM-Solver draw no noise; a second loop (state reset) repeats the first."""
    s = make_sampler(name, cfg_for("eps"))
    model = gaussian_denoiser(s.schedule)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    a = run_loop(s, model, x, 8, torch.Generator().manual_seed(1))
    b = run_loop(s, model, x, 8, None)
    assert torch.equal(a, b)


# ---------------------------------------------------------------- one-step golden values

X = torch.tensor([0.5, -1.0, 2.0, 0.0]).reshape(1, 1, 2, 2)
OUT = torch.tensor([0.1, 0.2, -0.3, 0.4]).reshape(1, 1, 2, 2)
AB_749, AB_499 = 0.003350550438936774, 0.07858724288177824  # linear schedule, checked by product


def test_golden_alphas_used_by_steps():
    ab = NoiseSchedule(LINEAR).alphas_cumprod
    assert float(ab[749]) == pytest.approx(AB_749, rel=1e-12)
    assert float(ab[499]) == pytest.approx(AB_499, rel=1e-12)


def test_ddim_one_step_golden():
    s = DDIMSampler(cfg_for("eps"))
    s.set_timesteps(4)  # 749 -> 499
    got = s.step(OUT, 749, X)
    x0 = (X - math.sqrt(1 - AB_749) * OUT) / math.sqrt(AB_749)  # the formula, by hand
    torch.testing.assert_close(got, math.sqrt(AB_499) * x0 + math.sqrt(1 - AB_499) * OUT)
    golden = torch.tensor([2.03401780, -5.61804247, 10.84858322, -1.55000651]).reshape(1, 1, 2, 2)
    torch.testing.assert_close(got, golden, atol=1e-5, rtol=1e-6)
    v = DDIMSampler(cfg_for("v"))
    v.set_timesteps(4)
    golden_v = torch.tensor([0.46482980, -1.01938009, 2.01633000, -0.08972049]).reshape(1, 1, 2, 2)
    torch.testing.assert_close(v.step(OUT, 749, X), golden_v, atol=1e-6, rtol=1e-6)


def test_ddpm_one_step_golden():
    s = DDPMSampler(cfg_for("eps"))
    s.set_timesteps(4)  # 749 -> 499, respaced beta = 1 - ab_749 / ab_499
    got = s.step(OUT, 749, X, torch.Generator().manual_seed(0))
    noise = torch.randn(1, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(noise.flatten(), torch.tensor([1.54099607, -0.29342890, -2.17878938, 0.56843126]))
    beta = 1 - AB_749 / AB_499
    x0 = (X - math.sqrt(1 - AB_749) * OUT) / math.sqrt(AB_749)
    mean = (math.sqrt(AB_499) * beta * x0 + math.sqrt(1 - beta) * (1 - AB_499) * X) / (1 - AB_749)
    var = beta * (1 - AB_499) / (1 - AB_749)
    torch.testing.assert_close(got, mean + math.sqrt(var) * noise)
    golden = torch.tensor([3.40684533, -6.04796362, 9.02958870, -1.32296062]).reshape(1, 1, 2, 2)
    torch.testing.assert_close(got, golden, atol=1e-5, rtol=1e-6)


# ---------------------------------------------------------------- factory, dtype, device

def test_make_sampler():
    assert set(SAMPLERS) == {"ddpm", "ddim", "dpm"}
    assert isinstance(make_sampler("ddpm", LINEAR), DDPMSampler)
    assert isinstance(make_sampler("ddim", LINEAR), DDIMSampler)
    assert isinstance(make_sampler("dpm", LINEAR), DPMSolverSampler)
    with pytest.raises(ValueError, match="ddpm, ddim, dpm"):
        make_sampler("euler", LINEAR)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("name", ["ddpm", "ddim", "dpm"])
def test_step_keeps_dtype(name, dtype):
    s = make_sampler(name, cfg_for("v"))
    s.set_timesteps(4)
    x = torch.randn(SHAPE).to(dtype)
    for t in s.timesteps:
        x = s.step(torch.zeros_like(x), int(t), x, torch.Generator().manual_seed(0))
        assert x.dtype == dtype and torch.isfinite(x).all()
    assert s.add_noise(x, x, torch.tensor([3, 4])).dtype == dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["ddpm", "ddim", "dpm"])
def test_cuda_matches_cpu(name):
    s = make_sampler(name, cfg_for("v"))
    x0 = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    cpu = run_loop(s, gaussian_denoiser(s.schedule), x, 10, torch.Generator().manual_seed(2))
    gpu = run_loop(s, gaussian_denoiser(s.schedule), x.cuda(), 10, torch.Generator().manual_seed(2))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
    t = torch.tensor([0, 999], device="cuda")
    assert s.add_noise(x0.cuda(), x.cuda(), t).device.type == "cuda"


# ---------------------------------------------------------------- temperature (models.sampling)

def _as_unet(model):
    """A schedule-space denoiser (x, t) as the U-Net call of sample_latent (x, t [B], ctx)."""
    return lambda x, tt, ctx: model(x, int(tt[0]))


@pytest.mark.parametrize("name", ["ddim", "dpm", "ddpm"])
@pytest.mark.parametrize("n", [1, 4, 20])
def test_temperature_zero_lands_on_the_data_mean(name, n):
    """Gaussian data N(MU, STD^2): at temperature 0 every sampler returns the mean, deterministically
    (DDPM's generator no longer matters). One step returns the denoiser's estimate at its one input,
    sigma_T e (the first step's noise completion), which misses the mean by a term in sqrt(ab_T),
    the share of the signal that input still holds; later steps correct it."""
    from vfi_cli.models.sampling import sample_latent

    cfg = cfg_for("v")
    model = _as_unet(gaussian_denoiser(NoiseSchedule(cfg)))
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    outs = [sample_latent(model, cfg, None, noise, name, n, torch.Generator().manual_seed(s), temperature=0.0)
            for s in (3, 4)]
    assert torch.equal(outs[0], outs[1])
    if n == 1:
        ab = float(NoiseSchedule(cfg).alphas_cumprod[-1])
        gain = math.sqrt(ab) * STD ** 2 / (ab * STD ** 2 + 1 - ab)  # E[x0 | x_T] = MU + gain (x_T - sqrt(ab) MU)
        torch.testing.assert_close(outs[0], MU + gain * (math.sqrt(1 - ab) * noise - math.sqrt(ab) * MU))
    else:
        assert (outs[0] - MU).abs().max().item() < 1e-3


def test_temperature_scales_the_spread_of_the_samples():
    """DDIM's probability-flow map is linear for Gaussian data: temperature T gives std T * STD around MU."""
    from vfi_cli.models.sampling import sample_latent

    cfg = cfg_for("v")
    model = _as_unet(gaussian_denoiser(NoiseSchedule(cfg)))
    noise = torch.randn(4, 4, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for temp in (1.0, 0.5, 0.25):
        x = sample_latent(model, cfg, None, noise, "dpm", 50, temperature=temp)
        assert x.mean().item() == pytest.approx(MU, abs=0.01)
        assert x.std().item() == pytest.approx(temp * STD, rel=0.02)


def test_temperature_outside_0_1_is_refused():
    from vfi_cli.models.sampling import sample_latent

    with pytest.raises(ValueError, match="temperature"):
        sample_latent(lambda x, t, c: x, cfg_for("v"), None, torch.zeros(SHAPE), "ddim", 1, temperature=1.5)


@pytest.mark.parametrize("pred", ["eps", "v"])
def test_output_for_x0_inverts_predict_x0(pred):
    s = NoiseSchedule(cfg_for(pred))
    g = torch.Generator().manual_seed(3)
    x_t, x0 = torch.randn(SHAPE, generator=g, dtype=torch.float64), torch.randn(SHAPE, generator=g, dtype=torch.float64)
    for t in (0, 250, 999):
        back, _ = s.predict_x0_eps(s.output_for_x0(x0, x_t, t), x_t, t)
        torch.testing.assert_close(back, x0)


@pytest.mark.parametrize("temp", [0.0, 0.6, 1.0])
def test_noise_completion_gives_the_denoiser_training_noise(temp):
    """Below temperature 1 every step, the first included, gives the denoiser inputs that carry the
    noise of training: the first step one input per pair, x_T + sqrt(1 - T^2) sigma_T e (e: the pair's
    noise; at temperature 0 that is sigma_T e, not the zeros of x_T), every later step one call on a
    doubled batch x_t +- sqrt(1 - T^2) sigma_t e; at temperature 1 every step is a plain call."""
    from vfi_cli.models.sampling import sample_latent

    cfg = cfg_for("v")
    sched = NoiseSchedule(cfg)
    inner = gaussian_denoiser(sched)
    seen = []

    def unet(x, tt, ctx):
        seen.append((x.clone(), int(tt[0]), tt.shape[0]))
        return inner(x, int(tt[0]))

    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    sample_latent(unet, cfg, None, noise, "ddim", 4, temperature=temp)
    assert len(seen) == 4
    fill = math.sqrt(1 - temp ** 2)
    for i, (x, t, b) in enumerate(seen):
        if temp == 1.0:
            assert b == SHAPE[0]
            continue
        if i == 0:
            assert b == SHAPE[0]
            x_T = temp * noise  # DDIM's init_noise_sigma is 1
            torch.testing.assert_close(x - x_T, fill * float(sched.sqrt_1m_ab[t]) * noise)
            continue
        assert b == 2 * SHAPE[0]
        half = (x[:SHAPE[0]] - x[SHAPE[0]:]) / 2  # the added noise
        torch.testing.assert_close(half, fill * float(sched.sqrt_1m_ab[t]) * noise)


@pytest.mark.parametrize("temp", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("name", ["ddim", "dpm"])
def test_chain_input_is_what_the_chain_feeds_the_denoiser(temp, name):
    """chain_input(k) is the denoiser's input at step k+1 of the sampling chain, at that step's
    timestep (sign +1 and -1: the two halves of the noise completion's pair); `stop` = all steps is
    the whole chain. What `vfi train-ldm --chain-share` trains on is what sampling presents."""
    from vfi_cli.models.sampling import chain_input, sample_latent

    cfg = cfg_for("v")
    inner = gaussian_denoiser(NoiseSchedule(cfg))
    seen = []

    def unet(x, tt, ctx):
        seen.append((x.clone(), int(tt[0])))
        return inner(x, int(tt[0]))

    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    full = sample_latent(unet, cfg, None, noise, name, 4, temperature=temp)
    chain = list(seen)
    assert torch.equal(sample_latent(unet, cfg, None, noise, name, 4, temperature=temp, stop=4), full)
    for k in (1, 2, 3):
        x_chain, t_chain = chain[k]
        for sign, half in ((1.0, slice(0, SHAPE[0])), (-1.0, slice(SHAPE[0], None))):
            x, t = chain_input(unet, cfg, None, noise, name, 4, k, temp, sign)
            assert t == t_chain
            torch.testing.assert_close(x, x_chain[half] if temp < 1.0 else x_chain)
    with pytest.raises(ValueError, match="k must be"):
        chain_input(unet, cfg, None, noise, name, 4, 4, temp)
