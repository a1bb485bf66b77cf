"""The run-time motion refinement (vfi_cli/models/refine.py): it aligns two warped neighbours that a
flow left a fraction of a pixel apart, leaves aligned ones alone, runs in float32 under autocast,
and is a decoder setting that older configs (without it) keep off."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from vfi_cli.models import checkpoint, refine
from vfi_cli.models.autoencoder import VQGAN
from vfi_cli.models.config import VQGANConfig, from_dict, preset, to_dict
from vfi_cli.models.layers import backward_warp

TINY = preset("tiny")


def _pattern(p: torch.Tensor) -> torch.Tensor:
    """A smooth RGB pattern (sums of sinusoids, up to 0.6 rad/px a direction) at points p [1, 2, H, W] -> [1, 3, H, W]."""
    g = torch.Generator().manual_seed(0)
    out = torch.zeros(1, 3, *p.shape[-2:])
    for _ in range(6):
        w = (torch.rand(2, generator=g) - 0.5) * 1.2
        phase, amp = torch.rand(3, generator=g) * 6.28, torch.rand(3, generator=g) * 0.3
        out += amp.view(1, 3, 1, 1) * torch.sin(w[0] * p[:, :1] + w[1] * p[:, 1:] + phase.view(1, 3, 1, 1))
    return out


def _pair(u=(1.3, -0.7), h=64, w=80):
    """The middle frame m, x0, x2 of a pattern moving by 2u from x0 to x2 (m(p) = x0(p - u) = x2(p + u),
    sampled exactly) and the true flow [1, 4, H, W]."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    p = torch.stack([xs, ys])[None]  # [1, 2, H, W] (x, y)
    uu = torch.tensor(u).view(1, 2, 1, 1)
    m, x0, x2 = _pattern(p), _pattern(p + uu), _pattern(p - uu)
    return m, x0, x2, torch.cat([-uu, uu], 1).expand(1, 4, h, w)


def _inner(x: torch.Tensor, b: int = 12) -> torch.Tensor:
    return x[..., b:-b, b:-b]


def test_align_warps_recovers_a_sub_pixel_error_of_the_motion():
    m, x0, x2, true = _pair()
    e = torch.tensor([0.4, -0.3]).view(1, 2, 1, 1)
    flow = true + torch.cat([e, -e], 1)  # the middle's half-motion off by e: the warps 2e apart
    t = torch.tensor([0.5])
    out = refine.align_warps(x0, x2, flow, t, refine.RefineConfig(iters=3))
    assert _inner((out - true).abs()).max() < 0.05  # back on the true motion, symmetrically
    before = _inner(backward_warp(x0, flow[:, :2], "bicubic") - backward_warp(x2, flow[:, 2:], "bicubic"))
    after = _inner(backward_warp(x0, out[:, :2], "bicubic") - backward_warp(x2, out[:, 2:], "bicubic"))
    assert after.square().mean() < before.square().mean() / 10  # down to bicubic resampling error


def test_align_warps_keeps_aligned_warps_and_weights_the_move_by_time():
    _, x0, x2, true = _pair()
    for tv in (0.5, 0.25):
        t = torch.tensor([tv])
        out = refine.align_warps(x0, x2, true, t, refine.RefineConfig())
        assert _inner((out - true).abs()).max() < 0.05  # already aligned: (almost) no change
    flow = true + torch.tensor([0.5, 0.0, 0.0, 0.0]).view(1, 4, 1, 1)  # only x0's warp is off
    step = refine.align_warps(x0, x2, flow, torch.tensor([0.25]), refine.RefineConfig(iters=1, max_step=0.1)) - flow
    # one delta moves x0's warp by 2t and x2's by -2(1 - t): at t = 1/4 the ratio is -1/3
    assert torch.allclose(_inner(step[:, 0]), -_inner(step[:, 2]) / 3, atol=1e-5)
    assert _inner(step[:, 0].abs()).max() <= 2 * 0.25 * 0.1 + 1e-6  # max_step bounds each step


def test_align_warps_runs_in_float32_under_autocast():
    _, x0, x2, true = _pair()
    flow = true + 0.3
    t = torch.tensor([0.5])
    ref = refine.align_warps(x0, x2, flow, t, refine.RefineConfig())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = refine.align_warps(x0.bfloat16(), x2.bfloat16(), flow.bfloat16(), t, refine.RefineConfig())
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.05  # only the bf16 rounding of the inputs differs


def test_refine_is_a_decoder_setting_off_by_default():
    assert VQGANConfig().refine_iters == 0 and TINY.vqgan.refine_iters == 0  # as the models were trained
    old = to_dict(TINY.vqgan)
    for k in ("refine_iters", "refine_window", "refine_lambda", "refine_max"):
        old.pop(k)
    assert from_dict(VQGANConfig, old) == TINY.vqgan  # a config from before the setting loads with it off
    assert {"refine_iters", "refine_window", "refine_lambda", "refine_max"} <= set(VQGANConfig.SETTINGS)
    with pytest.raises(ValueError, match="refine_window must be odd"):
        VQGAN(replace(TINY.vqgan, refine_iters=1, refine_window=4))
    torch.manual_seed(0)
    off = VQGAN(TINY.vqgan).eval()
    on = VQGAN(replace(TINY.vqgan, refine_iters=2, refine_window=5, static_gate=())).eval()
    on.load_state_dict(off.state_dict())
    _, x0, x2, _ = _pair()
    x0, x2 = x0[..., :32, :32], x2[..., :32, :32]
    z = torch.randn(1, 5, 8, 8)
    with torch.no_grad():
        a = off.decode(z, off.prepare(x0, x2))
        b = on.decode(z, on.prepare(x0, x2))
    assert b.shape == a.shape and torch.isfinite(b).all() and not torch.equal(a, b)


def test_use_decoder_settings_turns_the_refinement_on(tmp_path):
    from vfi_cli.models.denoiser import UNet
    torch.manual_seed(0)
    cfg = TINY
    vq, unet = VQGAN(cfg.vqgan), UNet(cfg.unet, cfg.vqgan.factor)
    checkpoint.save_autoencoder(tmp_path / "ae", cfg.vqgan, vq.state_dict(), {})
    checkpoint.save_interpolator(tmp_path / "m", cfg, unet.state_dict(), tmp_path / "ae", {})
    checkpoint.use_decoder_settings(tmp_path / "m", tmp_path / "r", "tiny", refine_iters=2)
    cfg2, vq2, _, data = checkpoint.load_interpolator(tmp_path / "r")
    assert vq2.cfg.refine_iters == cfg2.vqgan.refine_iters == 2 == data["decoder_settings"]["refine_iters"]
    assert vq2.decoder.refine.iters == 2
    assert all(torch.equal(a, b) for a, b in zip(vq2.state_dict().values(), vq.state_dict().values()))
