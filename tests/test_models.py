"""Model code: shapes, gradient coverage, warping, checkpoint round trip, overfit-one-batch."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from vfi_cli import checkpoint, motion
from vfi_cli.config import LDMConfig, VQGANConfig, dumps, from_dict, preset
from vfi_cli.errors import WeightsError
from vfi_cli.layers import backward_warp
from vfi_cli.schedulers import NoiseSchedule
from vfi_cli.unet import UNet
from vfi_cli.vqgan import VQGAN

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


def test_vqgan_shapes_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = VQGAN(TINY.vqgan)
    x0, x1, x2 = _triplet()
    pred, vq_loss, idx = model(x0, x1, x2)
    assert pred.shape == x1.shape
    f = TINY.vqgan.factor
    assert idx.shape == (2, 32 // f, 32 // f)
    assert model.encode(x1).shape == (2, TINY.vqgan.embed_dim, 32 // f, 32 // f)
    # zero-initialized heads block gradients for one step: take one step first, then check
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ((pred - x1).abs().mean() + vq_loss).backward()
    opt.step()
    opt.zero_grad()
    pred, vq_loss, _ = model(x0, x1, x2)
    ((pred - x1).abs().mean() + vq_loss).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_decoder_starts_as_blend_and_zero_flow_warp_is_identity():
    model = VQGAN(replace(TINY.vqgan, align_scales=(), align_radii=()))
    x0, x1, x2 = _triplet()
    pred, _, _ = model(x0, x1, x2)
    assert torch.allclose(pred, 0.5 * (x0 + x2), atol=1e-5)
    # with alignment (the presets), it starts as the blend of the neighbours aligned on the middle
    aligned = VQGAN(TINY.vqgan)
    w0, w2, _ = motion.align(x0, x2, aligned.align)
    assert torch.allclose(aligned(x0, x1, x2)[0], 0.5 * (w0 + w2), atol=1e-5)
    assert torch.allclose(backward_warp(x0, torch.zeros(2, 2, 32, 32)), x0, atol=1e-5)
    shifted = backward_warp(x0, torch.full((2, 2, 32, 32), 0.0).index_fill_(1, torch.tensor([0]), 1.0))
    assert torch.allclose(shifted[..., :-1], x0[..., 1:], atol=1e-5)  # sample at x+1


def test_unet_shapes_and_gradients():
    torch.manual_seed(0)
    net = UNet(TINY.unet)
    z = torch.randn(3, 4, 8, 8)
    t = torch.tensor([0, 10, 49])
    assert net(z, z, z, t).shape == z.shape
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net(z, z, z, t).pow(2).mean().backward()  # conv_out is zero-init: one step to open it
    net(z, torch.randn_like(z), z, t).sub(1).pow(2).mean().backward()
    opt.step()
    opt.zero_grad()
    net(z, torch.randn_like(z), z, t).sub(1).pow(2).mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_overfit_one_batch_vqgan():
    torch.manual_seed(0)
    model = VQGAN(TINY.vqgan)
    x0, x1, x2 = _triplet(b=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        pred, vq, _ = model(x0, x1, x2)
        loss = (pred - x1).abs().mean() + vq
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def test_overfit_one_batch_ldm():
    torch.manual_seed(0)
    net = UNet(TINY.unet)
    sched = NoiseSchedule(TINY.scheduler)
    z0, z1, z2 = torch.randn(3, 4, 4, 8, 8).unbind(0)
    noise = torch.randn_like(z1)
    t = torch.tensor([5, 20, 35, 45])
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        out = net(z0, sched.add_noise(z1, noise, t), z2, t)
        loss = (out - sched.target(z1, noise, t)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def _tiny_model_dir(tmp_path, seed=0):
    torch.manual_seed(seed)
    vq, unet = VQGAN(TINY.vqgan), UNet(TINY.unet)
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
    z = torch.randn(2, 4, 8, 8)
    t = torch.tensor([3, 7])
    with torch.no_grad():
        assert torch.equal(vq.eval()(x0, x1, x2)[0], vq2(x0, x1, x2)[0])
        assert torch.equal(unet.eval()(z, z, z, t), unet2(z, z, z, t))
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


def test_vq_codebook_revival():
    model = VQGAN(replace(TINY.vqgan, n_embed=32)).train()
    x0, x1, x2 = _triplet()
    model(x0, x1, x2)
    used = int((model.quantizer.usage > 0).sum())
    revived = model.quantizer.revive_dead_codes(model.encoder(x1))
    assert revived == 32 - used and float(model.quantizer.usage.sum()) == 0.0

