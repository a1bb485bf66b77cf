"""Model code: shapes, gradient coverage, warping, checkpoint round trip, overfit-one-batch."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from vfi_cli.models import checkpoint, motion
from vfi_cli.models.config import LDMConfig, VQGANConfig, dumps, from_dict, preset
from vfi_cli.errors import WeightsError
from vfi_cli.models.layers import backward_warp
from vfi_cli.models.schedulers import NoiseSchedule
from vfi_cli.models.denoiser import UNet
from vfi_cli.models.autoencoder import VQGAN, kl_divergence

TINY = preset("tiny")


def _triplet(b=2, s=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, s // 4, (s + 16) // 4, generator=g) * 2 - 1
    base = torch.nn.functional.interpolate(coarse, size=(s, s + 16), mode="bilinear", align_corners=False)
    x0, x1, x2 = base[..., :s], base[..., 4:s + 4], base[..., 8:s + 8]  # 4 px steps
    return x0, x1, x2


def test_config_json_round_trip():
    for name in ("tiny", "small", "base"):
        cfg = preset(name)
        assert from_dict(LDMConfig, json.loads(dumps(cfg))) == cfg
    with pytest.raises(ValueError):
        from_dict(VQGANConfig, {"nope": 1})


def _half() -> torch.Tensor:
    return torch.full((2,), 0.5)


def test_vqgan_shapes_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = VQGAN(TINY.vqgan)
    x0, x1, x2 = _triplet()
    t = torch.tensor([0.3, 0.5])
    pred, kl, mean = model(x0, x1, x2, t)
    assert pred.shape == x1.shape
    f = TINY.vqgan.factor
    assert mean.shape == (2, TINY.vqgan.embed_dim, 32 // f, 32 // f)
    pair = model.prepare(x0, x2, t)
    assert torch.equal(model.encode(x1, pair), model.posterior(x1, pair)[0])
    # zero-initialized heads block gradients for one step: take one step first, then check
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ((pred - x1).abs().mean() + kl).backward()
    opt.step()
    opt.zero_grad()
    pred, kl, _ = model(x0, x1, x2, t)
    ((pred - x1).abs().mean() + kl).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_kl_divergence_golden_values_and_free_nats():
    zero = torch.zeros(1, 2, 3, 3)
    assert float(kl_divergence(zero, zero)) == 0.0
    mean = torch.ones(1, 2, 3, 3)  # KL of N(1, 1) from N(0, 1) is 1/2 nat
    assert float(kl_divergence(mean, zero)) == pytest.approx(0.5)
    mean[:, 1] = 0.0  # channel 1 carries nothing: free nats make it cost the floor, not zero
    assert float(kl_divergence(mean, zero)) == pytest.approx(0.25)
    assert float(kl_divergence(mean, zero, free_nats=0.1)) == pytest.approx((0.5 + 0.1) / 2)


def test_decoder_starts_as_blend_and_zero_flow_warp_is_identity():
    model = VQGAN(replace(TINY.vqgan, align_scales=(), align_radii=()))
    x0, x1, x2 = _triplet()
    z = torch.zeros(2, 5, 8, 8)  # the fresh encoder's posterior mean
    assert torch.equal(model.encode(x1, model.prepare(x0, x2)), z)
    pred = model.decode(z, model.prepare(x0, x2))
    assert torch.allclose(pred, 0.5 * (x0 + x2), atol=1e-5)
    # with alignment (the presets), it starts as the blend of the neighbours aligned on the frame time
    aligned = VQGAN(TINY.vqgan)
    w0, w2, _ = motion.align(x0, x2, aligned.align)
    assert torch.allclose(aligned.decode(z, aligned.prepare(x0, x2)), 0.5 * (w0 + w2), atol=1e-5)
    assert torch.allclose(backward_warp(x0, torch.zeros(2, 2, 32, 32)), x0, atol=1e-5)
    shifted = backward_warp(x0, torch.full((2, 2, 32, 32), 0.0).index_fill_(1, torch.tensor([0]), 1.0))
    assert torch.allclose(shifted[..., :-1], x0[..., 1:], atol=1e-5)  # sample at x+1



def test_warp_grid_stays_float32_under_autocast():
    """A bf16 grid would round 1080p coordinates by pixels; the warp keeps them in float32."""
    w = 1920
    ramp = torch.arange(w, dtype=torch.float32).expand(1, 1, 4, w).contiguous()  # value = x coordinate
    flow = torch.zeros(1, 2, 4, w)
    flow[:, 0] = 0.25
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = backward_warp(ramp, flow.to(torch.bfloat16))
    assert out.dtype == torch.float32
    assert (out[..., :-1] - (ramp[..., :-1] + 0.25)).abs().max().item() < 0.01  # px


def test_time_offsets_follow_linear_motion():
    d = torch.randn(2, 2, 4, 4)
    o0, o2 = motion.time_offsets(d, _half())
    assert torch.allclose(o0, -d) and torch.allclose(o2, d)  # the middle: symmetric
    o0, o2 = motion.time_offsets(d, torch.tensor([0.25, 0.75]))
    assert torch.allclose(o0[0], -0.5 * d[0]) and torch.allclose(o2[0], 1.5 * d[0])
    assert torch.allclose(o2 - o0, 2 * d)  # x0 and x2 always sampled one full motion apart
    x0, _, x2 = _triplet()
    cfg = VQGAN(TINY.vqgan).align
    a = motion.align(x0, x2, cfg)
    b = motion.align(x0, x2, cfg, _half())
    assert all(torch.allclose(u, v) for u, v in zip(a, b))


def test_unet_shapes_and_gradients():
    torch.manual_seed(0)
    net = UNet(TINY.unet, TINY.vqgan.factor)
    x0, _, x2 = _triplet(b=3)
    pair = VQGAN(TINY.vqgan).prepare(x0, x2, torch.tensor([0.3, 0.5, 0.7]))
    ctx = net.context(pair)
    f = TINY.vqgan.factor
    assert ctx.shape == (3, TINY.unet.context_ch, 32 // f, 32 // f)
    z = torch.randn(3, 5, 32 // f, 32 // f)
    s = torch.tensor([0, 10, 49])
    assert net(z, s, ctx).shape == z.shape
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net(z, s, net.context(pair)).sub(1).pow(2).mean().backward()  # conv_out is zero-init: one step to open it
    opt.step()
    opt.zero_grad()
    net(torch.randn_like(z), s, net.context(pair)).sub(1).pow(2).mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_overfit_one_batch_vqgan_and_the_latent_matters():
    torch.manual_seed(0)
    model = VQGAN(TINY.vqgan)
    x0, x1, x2 = _triplet(b=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        pred, kl, _ = model(x0, x1, x2)
        loss = (pred - x1).abs().mean() + 1e-3 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])
    with torch.no_grad():  # the decoder reads its latent: the true one beats noise
        pair = model.prepare(x0, x2)
        mean = model.encode(x1, pair)
        err_true = (model.decode(mean, pair) - x1).abs().mean()
        err_noise = (model.decode(torch.randn_like(mean), pair) - x1).abs().mean()
    assert err_true < 0.9 * err_noise, (float(err_true), float(err_noise))


def test_overfit_one_batch_ldm():
    torch.manual_seed(0)
    net = UNet(TINY.unet, TINY.vqgan.factor)
    sched = NoiseSchedule(TINY.scheduler)
    x0, _, x2 = _triplet(b=4)
    pair = VQGAN(TINY.vqgan).prepare(x0, x2)
    z1 = torch.randn(4, 5, 8, 8)
    noise = torch.randn_like(z1)
    t = torch.tensor([5, 20, 35, 45])
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        out = net(sched.add_noise(z1, noise, t), t, net.context(pair))
        loss = (out - sched.target(z1, noise, t)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def _tiny_model_dir(tmp_path, seed=0):
    torch.manual_seed(seed)
    vq, unet = VQGAN(TINY.vqgan), UNet(TINY.unet, TINY.vqgan.factor)
    for p in unet.conv_out.parameters():  # non-zero output so round trips are meaningful
        torch.nn.init.normal_(p, std=0.1)
    checkpoint.save_autoencoder(tmp_path / "ae", TINY.vqgan, vq.state_dict(), {"step": 1})
    checkpoint.save_interpolator(tmp_path / "m", TINY, unet.state_dict(), tmp_path / "ae", {"step": 1})
    return vq, unet, tmp_path / "m"


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    vq, unet, path = _tiny_model_dir(tmp_path)
    cfg, vq2, unet2, data = checkpoint.load_interpolator(path)
    assert cfg == TINY and data["kind"] == "vfi" and data["step"] == 1
    x0, x1, x2 = _triplet()
    z = torch.randn(2, 5, 8, 8)
    t = torch.tensor([3, 7])
    with torch.no_grad():
        pair = vq.eval().prepare(x0, x2)
        assert torch.equal(vq.decode(z, pair), vq2.decode(z, vq2.prepare(x0, x2)))
        assert torch.equal(vq.encode(x1, pair), vq2.encode(x1, pair))
        assert torch.equal(unet.eval()(z, t, unet.context(pair)), unet2(z, t, unet2.context(pair)))
    assert not list(path.glob(".*tmp"))  # atomic writes leave no temp files


def test_checkpoint_errors_are_clear(tmp_path):
    _, _, path = _tiny_model_dir(tmp_path)
    with pytest.raises(WeightsError, match="not found"):
        checkpoint.load_interpolator(tmp_path / "missing")
    with pytest.raises(WeightsError, match="expected 'vfi'"):
        checkpoint.load_interpolator(tmp_path / "ae")  # an autoencoder is not an interpolator
    # a config that disagrees with the weights: strict load names the file
    data = json.loads((path / "config.json").read_text())
    data["model"]["unet"]["ch"] = 32
    (path / "config.json").write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="model.safetensors does not match"):
        checkpoint.load_interpolator(path)
    # a swapped autoencoder is caught by its hash
    _, _, path2 = _tiny_model_dir(tmp_path / "b", seed=1)
    vq_other = VQGAN(TINY.vqgan)
    checkpoint.save_state(path2 / "autoencoder" / "model.safetensors", vq_other.state_dict())
    with pytest.raises(WeightsError, match="sha256"):
        checkpoint.load_interpolator(path2)
    (path2 / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(WeightsError):
        checkpoint.load_interpolator(path2)


def test_static_gate_blends_where_the_neighbours_agree():
    x0, _, x2 = _triplet()
    lvl = 2.0 / 255.0  # one 8-bit level of a [-1, 1] frame
    same = motion.static_weight(x0, x0 + 0.5 * lvl, lo=1.5, hi=4.0)
    assert torch.allclose(same, torch.ones_like(same))  # half a level apart: the blend
    far = motion.static_weight(x0, x0 + 10 * lvl, lo=1.5, hi=4.0)
    assert torch.equal(far, torch.zeros_like(far))  # ten levels apart: the model
    mid = motion.static_weight(x0, x0 + 2.75 * lvl, lo=1.5, hi=4.0)
    assert torch.allclose(mid, torch.full_like(mid, 0.5), atol=1e-3)  # linear between lo and hi
    torch.manual_seed(0)
    model = VQGAN(TINY.vqgan).eval()
    for p in model.decoder.head.parameters():  # a decoder that paints something everywhere
        torch.nn.init.normal_(p, std=0.1)
    with torch.no_grad():
        still = x0 + 0.5 * lvl
        t = torch.tensor([0.25, 0.5])
        pair = model.prepare(x0, still, t)
        out = model.decode(torch.randn(2, 5, 8, 8), pair)
        blend = (1 - t.view(-1, 1, 1, 1)) * x0 + t.view(-1, 1, 1, 1) * still
        assert torch.allclose(out, blend, atol=1e-5)  # a still pair gives the blend at t, whatever z
        moving = model.decode(torch.randn(2, 5, 8, 8), model.prepare(x0, x2, t))
        assert not torch.allclose(moving, (x0 + x2) / 2, atol=1e-2)  # elsewhere the model decides
        off = VQGAN(replace(TINY.vqgan, static_gate=()))
        off.load_state_dict(model.state_dict())
        assert not torch.allclose(off.eval().decode(torch.randn(2, 5, 8, 8), off.prepare(x0, still, t)), blend,
                                  atol=1e-3)
