"""`vfi train-vqgan` / `vfi train-ldm`: loadable outputs, exact resume, clear errors, torchrun DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from clips import make_clip
from vfi_cli.models import checkpoint
from vfi_cli.cli import app

runner = CliRunner()
COMMON = ["--preset", "tiny", "--batch-size", "2", "--crop", "32"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("data") / "clip.mkv", n_frames=12, width=48, height=40)


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory, clip) -> Path:
    out = tmp_path_factory.mktemp("runs") / "ae"
    res = run("train-vqgan", "--data", clip, "--out", out, "--max-steps", "3", "--ckpt-every", "2", *COMMON)
    assert res.exit_code == 0, res.output
    return out


def test_train_vqgan_writes_a_loadable_autoencoder(autoencoder):
    model, data = checkpoint.load_autoencoder(autoencoder)
    assert data["kind"] == "vqgan" and data["step"] == 3
    assert data["training"]["crop"] == 32
    assert (autoencoder / "trainer_state.pt").exists()


def test_frame_loss_weights_are_recorded_and_change_training(tmp_path, clip):
    base = ["train-vqgan", "--data", clip, "--max-steps", "3", *COMMON]
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(*base, "--out", a).exit_code == 0
    res = run(*base, "--out", b, "--w-ssim", "1.5", "--w-census", "0")
    assert res.exit_code == 0, res.output
    (_, da), (_, db) = checkpoint.load_autoencoder(a), checkpoint.load_autoencoder(b)
    assert (da["training"]["w_ssim"], da["training"]["w_census"]) == (0.2, 0.5)
    assert (db["training"]["w_ssim"], db["training"]["w_census"]) == (1.5, 0.0)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)  # same seed and data: only the loss differs
    assert run(*base, "--out", tmp_path / "c", "--w-ssim", "-1").exit_code == 2


def test_train_ldm_writes_a_complete_model_dir_usable_by_double(tmp_path, clip, autoencoder):
    out = tmp_path / "m"
    res = run("train-ldm", "--data", clip, "--vqgan", autoencoder, "--out", out, "--max-steps", "3", *COMMON)
    assert res.exit_code == 0, res.output
    cfg, _, _, data = checkpoint.load_interpolator(out)
    assert data["step"] == 3 and data["latent_scale"] > 0
    assert cfg.latent_scale == data["latent_scale"]
    res = run("double", clip, tmp_path / "o.mkv", "--weights", out, "-q")
    assert res.exit_code == 0, res.output


def test_resume_continues_exactly(tmp_path, clip):
    straight, resumed = tmp_path / "a", tmp_path / "b"
    assert run("train-vqgan", "--data", clip, "--out", straight, "--max-steps", "4", *COMMON).exit_code == 0
    # interrupted after 2 steps (the warm-up LR does not depend on --max-steps), then resumed
    assert run("train-vqgan", "--data", clip, "--out", resumed, "--max-steps", "2", *COMMON).exit_code == 0
    res = run("train-vqgan", "--data", clip, "--out", resumed, "--max-steps", "4", *COMMON)
    assert res.exit_code == 0 and "resumed" in res.output and "at step 2" in res.output
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((resumed / "config.json").read_text())["step"] == 4


def test_train_errors(tmp_path, clip, autoencoder):
    empty = tmp_path / "empty"
    empty.mkdir()
    short = make_clip(tmp_path / "short.mkv", n_frames=2)
    cases = [
        (["train-vqgan", "--data", empty, "--out", tmp_path / "o1"], "no videos"),
        (["train-vqgan", "--data", short, "--out", tmp_path / "o2"], "at least 3"),
        (["train-vqgan", "--data", clip, "--out", tmp_path / "o3", "--crop", "64"], "crop 64 larger"),
        (["train-ldm", "--data", clip, "--vqgan", tmp_path / "o4", "--out", tmp_path / "o5"], "--vqgan"),
        (["train-ldm", "--data", clip, "--vqgan", clip, "--out", tmp_path / "o6"], "--vqgan"),
    ]
    for args, needle in cases:
        res = run(*args, "--max-steps", "1") if "--crop" in args else run(*args, "--max-steps", "1", "--crop", "32")
        assert res.exit_code == 1, (args, res.output)
        assert needle in res.output and "Traceback" not in res.output, (args, res.output)
    res = run("train-vqgan", "--data", clip, "--out", tmp_path / "o7", "--preset", "huge", "--crop", "32")
    assert res.exit_code == 2 and "'tiny', 'small', 'base'" in res.output  # a usage error: the choices are listed
    assert not (tmp_path / "o7").exists()
    # an interpolator dir is not an autoencoder
    ldm = tmp_path / "ldm"
    assert run("train-ldm", "--data", clip, "--vqgan", autoencoder, "--out", ldm, "--max-steps", "1", *COMMON).exit_code == 0
    res = run("train-ldm", "--data", clip, "--vqgan", ldm, "--out", tmp_path / "o8", "--max-steps", "1", *COMMON)
    assert res.exit_code == 1 and "expected 'vqgan'" in res.output


def test_torchrun_two_processes_write_one_checkpoint(tmp_path, clip):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "vfi_cli", "train-vqgan", "--data", str(clip), "--out", str(out), "--max-steps", "2", *COMMON]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, data = checkpoint.load_autoencoder(out)
    assert data["step"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "trainer_state.pt"]


def test_nan_loss_is_reported_and_stops(tmp_path, clip, monkeypatch):
    from vfi_cli.training import objectives

    real = objectives.VQGANObjective.loss

    def poisoned(self, batch, t, step, net):
        loss, logs = real(self, batch, t, step, net)
        return loss * float("nan") if step == 1 else loss, logs

    monkeypatch.setattr(objectives.VQGANObjective, "loss", poisoned)
    res = run("train-vqgan", "--data", clip, "--out", tmp_path / "n", "--max-steps", "3", *COMMON)
    assert res.exit_code == 1
    assert "loss became nan at step 1" in res.output and "lower --lr" in res.output


def test_decoder_finetune_keeps_the_encoder_and_can_be_swapped_in(tmp_path, clip, autoencoder):
    ldm = tmp_path / "ldm"
    assert run("train-ldm", "--data", clip, "--vqgan", autoencoder, "--out", ldm, "--max-steps", "1", *COMMON).exit_code == 0
    ft = tmp_path / "ft"
    res = run("train-vqgan", "--data", clip, "--out", ft, "--max-steps", "2", "--init", autoencoder,
              "--freeze-encoder", "--lr", "1e-2", *COMMON)
    assert res.exit_code == 0, res.output
    a, b = load_file(str(autoencoder / "model.safetensors")), load_file(str(ft / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("encoder."))
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("decoder."))
    checkpoint.swap_autoencoder(ldm, ft, tmp_path / "swapped")
    _, vq, _, data = checkpoint.load_interpolator(tmp_path / "swapped")
    assert torch.equal(vq.state_dict()["decoder.head.net.2.weight"], b["decoder.head.net.2.weight"])
    # an autoencoder whose encoder moved cannot be swapped in
    moved = tmp_path / "moved"
    assert run("train-vqgan", "--data", clip, "--out", moved, "--max-steps", "2", "--init", autoencoder,
               "--lr", "1e-2", *COMMON).exit_code == 0
    with pytest.raises(Exception, match="changed the encoder"):
        checkpoint.swap_autoencoder(ldm, moved, tmp_path / "bad")


def test_a_decoder_without_alignment_is_finetuned_with_it_and_swapped_in(tmp_path, clip):
    from dataclasses import replace

    from vfi_cli.models.config import preset
    from vfi_cli.models.autoencoder import VQGAN

    old_cfg = replace(preset("tiny").vqgan, align_scales=(), align_radii=())
    old = tmp_path / "old"
    checkpoint.save_autoencoder(old, old_cfg, VQGAN(old_cfg).state_dict(), {})
    ldm = tmp_path / "ldm"
    assert run("train-ldm", "--data", clip, "--vqgan", old, "--out", ldm, "--max-steps", "1", *COMMON).exit_code == 0
    ft = tmp_path / "ft"
    res = run("train-vqgan", "--data", clip, "--out", ft, "--max-steps", "2", "--init", old, "--freeze-encoder",
              "--strides", "1,2", "--pan", "4", "--decoder-settings", "preset", *COMMON)
    assert res.exit_code == 0, res.output
    checkpoint.swap_autoencoder(ldm, ft, tmp_path / "swapped")
    cfg, vq, _, _ = checkpoint.load_interpolator(tmp_path / "swapped")
    assert cfg.vqgan.align_scales == preset("tiny").vqgan.align_scales == vq.cfg.align_scales
    assert vq.align is not None
    res = run("train-vqgan", "--data", clip, "--out", tmp_path / "bad", "--strides", "1,x", *COMMON)
    assert res.exit_code != 0 and "--strides must be integers >= 1" in res.output
    # or the same weights just run with the preset's decoder settings (no training)
    checkpoint.use_decoder_settings(ldm, tmp_path / "set", "tiny")
    cfg2, vq2, unet2, _ = checkpoint.load_interpolator(tmp_path / "set")
    _, vq_old, unet_old, _ = checkpoint.load_interpolator(ldm)
    assert vq2.cfg.align_scales == preset("tiny").vqgan.align_scales and vq_old.align is None
    assert all(torch.equal(a, b) for a, b in zip(vq2.state_dict().values(), vq_old.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(unet2.state_dict().values(), unet_old.state_dict().values()))
    checkpoint.use_decoder_settings(ldm, tmp_path / "set13", "tiny", align_smooth=13)  # one setting replaced
    cfg3, vq3, _, data3 = checkpoint.load_interpolator(tmp_path / "set13")
    assert vq3.cfg.align_smooth == cfg3.vqgan.align_smooth == 13 == data3["decoder_settings"]["align_smooth"]
    assert vq3.cfg.align_scales == preset("tiny").vqgan.align_scales
    with pytest.raises(ValueError, match="not decoder settings"):
        checkpoint.use_decoder_settings(ldm, tmp_path / "bad_set", "tiny", embed_dim=4)
    plain = tmp_path / "plain"
    assert run("train-vqgan", "--data", clip, "--out", plain, "--max-steps", "1", "--no-align", *COMMON).exit_code == 0
    vq_plain, _ = checkpoint.load_autoencoder(plain)
    assert vq_plain.cfg.align_scales == () and vq_plain.align is None and vq_plain.cfg.warp_mode == "bilinear"
    res = run("train-vqgan", "--data", clip, "--out", plain, "--max-steps", "2", *COMMON)  # resume, align now on
    assert res.exit_code == 1 and "align=False" in res.output
    # another decoder size cannot be a starting point
    other = replace(preset("tiny").vqgan, flow_ch=(8, 8, 8, 12))
    checkpoint.save_autoencoder(tmp_path / "other", other, VQGAN(other).state_dict(), {})
    res = run("train-vqgan", "--data", clip, "--out", tmp_path / "bad2", "--init", tmp_path / "other", *COMMON)
    assert res.exit_code == 1 and "decoder's parameters differ" in res.output


def test_a_finetune_runs_the_decoder_with_the_init_models_settings(tmp_path, clip, autoencoder):
    """A shipped model runs with settings changed after training (align_smooth 13): its fine-tune
    trains the decoder on that alignment, not on the preset's, unless --decoder-settings preset."""
    from dataclasses import replace

    from vfi_cli.models.config import preset

    vq, _ = checkpoint.load_autoencoder(autoencoder)
    set13 = tmp_path / "set13"
    cfg13 = replace(vq.cfg, align_smooth=13, static_gate=(0.5, 1.0))
    checkpoint.save_autoencoder(set13, cfg13, vq.state_dict(), {})
    tiny = preset("tiny").vqgan
    for mode, smooth, gate in (("init", 13, [0.5, 1.0]), ("preset", tiny.align_smooth, list(tiny.static_gate))):
        ft = tmp_path / mode
        res = run("train-vqgan", "--data", clip, "--out", ft, "--max-steps", "1", "--init", set13,
                  "--freeze-encoder", "--decoder-settings", mode, *COMMON)
        assert res.exit_code == 0, res.output
        data = json.loads((ft / "config.json").read_text())
        assert data["vqgan"]["align_smooth"] == smooth and data["training"]["decoder_settings"] == mode
        assert data["vqgan"]["static_gate"] == gate
        trained, _ = checkpoint.load_autoencoder(ft)
        assert trained.align.smooth == smooth  # the block matcher the decoder was trained behind
    res = run("train-vqgan", "--data", clip, "--out", tmp_path / "bad", "--init", set13, "--decoder-settings", "x",
              *COMMON)
    assert res.exit_code == 2
    # a run cannot resume under the other settings (the decoder would change matcher mid-run)
    res = run("train-vqgan", "--data", clip, "--out", tmp_path / "preset", "--max-steps", "2", "--init", set13,
              "--freeze-encoder", *COMMON)
    assert res.exit_code == 1 and "decoder settings align_smooth=3" in res.output
    res = run("train-vqgan", "--data", clip, "--out", tmp_path / "init", "--max-steps", "2", "--init", set13,
              "--freeze-encoder", *COMMON)  # the same settings resume
    assert res.exit_code == 0, res.output


def test_decoder_finetune_on_the_denoisers_samples_and_warm_start(tmp_path, clip, autoencoder):
    ldm = tmp_path / "ldm"
    assert run("train-ldm", "--data", clip, "--vqgan", autoencoder, "--out", ldm, "--max-steps", "1", *COMMON).exit_code == 0
    ft = tmp_path / "ft"
    res = run("train-vqgan", "--data", clip, "--out", ft, "--max-steps", "2", "--init", autoencoder,
              "--freeze-encoder", "--on-samples", ldm, "--sample-mix", "0.5", *COMMON)
    assert res.exit_code == 0, res.output
    assert json.loads((ft / "config.json").read_text())["training"]["sample_temperature"] is None
    # --sample-temperature: the model's own (tiny: 1) reproduces the run; another changes the samples
    for temp in ("1", "0"):
        res = run("train-vqgan", "--data", clip, "--out", tmp_path / f"ft{temp}", "--max-steps", "2", "--init",
                  autoencoder, "--freeze-encoder", "--on-samples", ldm, "--sample-temperature", temp, *COMMON)
        assert res.exit_code == 0, res.output
    done = {k: load_file(str(tmp_path / k / "model.safetensors")) for k in ("ft", "ft1", "ft0")}
    assert all(torch.equal(done["ft"][k], done["ft1"][k]) for k in done["ft"])
    assert not all(torch.equal(done["ft"][k], done["ft0"][k]) for k in done["ft"])
    assert json.loads((tmp_path / "ft0" / "config.json").read_text())["training"]["sample_temperature"] == 0.0
    a, b = load_file(str(autoencoder / "model.safetensors")), load_file(str(ft / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("encoder."))
    checkpoint.swap_autoencoder(ldm, ft, tmp_path / "swapped")  # the denoiser's latents are still valid
    # without a frozen encoder the samples would go stale: refused in one line
    res = run("train-vqgan", "--data", clip, "--out", tmp_path / "bad", "--init", autoencoder,
              "--on-samples", ldm, *COMMON)
    assert res.exit_code == 1 and "--on-samples needs --freeze-encoder" in res.output
    # warm start: every same-named, same-shaped tensor is copied, the rest keeps its init
    ws = tmp_path / "ws"
    res = run("train-vqgan", "--data", clip, "--out", ws, "--max-steps", "1", "--warm-start", ft, "--lr", "1e-9",
              *COMMON)
    assert res.exit_code == 0 and "warm start:" in res.output
    c = load_file(str(ws / "model.safetensors"))
    assert torch.allclose(c["decoder.head.net.2.weight"], b["decoder.head.net.2.weight"], atol=1e-6)
    res = run("train-vqgan", "--data", clip, "--out", tmp_path / "ws2", "--warm-start", tmp_path / "nothing", *COMMON)
    assert res.exit_code == 1 and "--warm-start: cannot read" in res.output


def test_training_logs_the_latents_worth(tmp_path, clip):
    res = run("train-vqgan", "--data", clip, "--out", tmp_path / "w", "--max-steps", "1", "--spans", "3", *COMMON)
    assert res.exit_code == 0, res.output
    assert "psnr_true=" in res.output and "psnr_noise=" in res.output and "kl_nats=" in res.output
    assert "spans 3" in res.output
    res = run("train-vqgan", "--data", clip, "--out", tmp_path / "w2", "--spans", "1", *COMMON)
    assert res.exit_code != 0 and "--spans must be integers >= 2" in res.output


def test_denoiser_finetune_from_a_model_dir_with_a_pixel_loss(tmp_path, clip, autoencoder):
    ldm = tmp_path / "ldm"
    assert run("train-ldm", "--data", clip, "--vqgan", autoencoder, "--out", ldm, "--max-steps", "1", *COMMON).exit_code == 0
    ft = tmp_path / "ft"
    res = run("train-ldm", "--data", clip, "--vqgan", autoencoder, "--out", ft, "--max-steps", "2", "--init", ldm,
              "--decode-weight", "10", "--ema-decay", "0", "--lr", "1e-2", *COMMON)
    assert res.exit_code == 0, res.output
    assert "pixel=" in res.output  # the decoded frame's loss is logged beside the latent's
    _, _, _, start = checkpoint.load_interpolator(ldm)
    _, _, _, data = checkpoint.load_interpolator(ft)
    assert data["latent_scale"] == start["latent_scale"]  # kept from --init, not recalibrated
    a, b = load_file(str(ldm / "model.safetensors")), load_file(str(ft / "model.safetensors"))
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
    assert data["training"]["decode_weight"] == 10 and data["training"]["init_from"] == str(ldm)
    # a denoiser of another autoencoder's latents is refused in one line
    other = tmp_path / "other_ae"
    assert run("train-vqgan", "--data", clip, "--out", other, "--max-steps", "1", "--seed", "7", *COMMON).exit_code == 0
    res = run("train-ldm", "--data", clip, "--vqgan", other, "--out", tmp_path / "bad", "--init", ldm, *COMMON)
    assert res.exit_code == 1 and "encoder differs from --vqgan's" in res.output
    res = run("train-ldm", "--data", clip, "--vqgan", autoencoder, "--out", tmp_path / "bad2", "--init", clip, *COMMON)
    assert res.exit_code == 1 and "--init" in res.output


def test_chain_training_fits_the_denoisers_own_chain_states(tmp_path, clip, autoencoder):
    """--chain-share: part of each batch is the denoiser's input at a later step of its own
    temperature-0 chain, with the true latent as target; overfitting one batch drives that loss down,
    and the CLI logs it and records the setting."""
    from dataclasses import replace

    from vfi_cli.models.config import preset
    from vfi_cli.training.loop import TrainConfig
    from vfi_cli.training.objectives import LDMObjective

    torch.manual_seed(0)
    tc = TrainConfig(kind="ldm", data=(str(clip),), out=str(tmp_path / "x"), preset="tiny", crop=32,
                     vqgan_dir=str(autoencoder), chain_share=0.5, chain_steps=4)
    obj = LDMObjective(replace(preset("tiny"), default_temperature=0.0), tc, torch.device("cpu"))
    batch, times = torch.rand(4, 3, 3, 32, 32) * 2 - 1, torch.full((4,), 0.5)
    obj.calibrate(batch, times)
    opt = torch.optim.Adam(obj.net.parameters(), lr=3e-3)
    chain = []
    for step in range(40):
        torch.manual_seed(step % 2)  # two fixed draws of (chain length, step, noise)
        loss, logs = obj.loss(batch, times, step, obj.net)
        opt.zero_grad()
        loss.backward()
        opt.step()
        chain.append(logs["chain"])
        assert set(logs) == {"mse", "chain"}
    assert sum(chain[-2:]) < 0.5 * sum(chain[:2]), (chain[:2], chain[-2:])
    out = tmp_path / "m"
    res = run("train-ldm", "--data", clip, "--vqgan", autoencoder, "--out", out, "--max-steps", "2",
              "--chain-share", "0.5", "--chain-steps", "4", *COMMON)
    assert res.exit_code == 0, res.output
    assert "chain=" in res.output
    _, _, _, data = checkpoint.load_interpolator(out)
    assert data["training"]["chain_share"] == 0.5 and data["training"]["chain_steps"] == 4
    for bad in (["--chain-share", "1.5"], ["--chain-steps", "1"]):
        res = run("train-ldm", "--data", clip, "--vqgan", autoencoder, "--out", tmp_path / "bad", *bad, *COMMON)
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        assert not (tmp_path / "bad").exists()
