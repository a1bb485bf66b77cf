"""The `vfi train-vqgan` / `vfi train-ldm` commands; vfi_cli.cli adds them to its app. The training
package is imported only when one of them runs, so `vfi double` never loads it."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from vfi_cli.messages import err, fail, handles_errors, say
from vfi_cli.models.config import PRESETS

app = typer.Typer()  # merged into vfi_cli.cli.app (add_typer without a name)
ModelPreset = Enum("ModelPreset", {name: name for name in PRESETS}, type=str)  # tiny | small | base
DecoderSettings = Enum("DecoderSettings", {"init": "init", "preset": "preset"}, type=str)  # with --init


def _ints(text: str, name: str = "--strides", low: int = 1, allow_empty: bool = False) -> tuple[int, ...]:
    """A comma-separated option (--strides, --spans, --sample-steps) -> integers >= low."""
    if allow_empty and not text.strip():
        return ()
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < low:
        fail(f"{name} must be integers >= {low} separated by commas, got {text!r}")
    return values


_STRIDES = typer.Option("1,2,3", metavar="LIST", help="Temporal strides of the training triplets, comma-separated.")
_SPANS = typer.Option("", metavar="LIST", help="Also train on uneven triplets (i, i+k, i+n) for these n (e.g. 3: "
                      "frame times 1/3, 2/3), comma-separated; empty = middle frames only.")


def _train(kind: str, data: List[str], out: Path, crop: Optional[int], **kw) -> None:
    from vfi_cli.training.loop import TrainConfig, train
    from vfi_cli.training.crop import choose_crop

    if crop is None:
        choice = choose_crop(kind, data, kw["preset"], kw.get("max_side"))
        say(choice.reason)
        crop = choice.crop
    tc = TrainConfig(kind=kind, data=tuple(str(d) for d in data), out=str(out), crop=crop, **kw)
    train(tc, console=err)


_DATA = typer.Option(..., "--data", metavar="PATH", help="Video file, folder of videos, Vimeo-90k triplet root, "
                     "or 'synthetic[:N]'. Repeatable.")
_PRESET = typer.Option("small", help="Model size (tiny: tests; small: the shipped model; base: GPU-sized).")
_MAX_STEPS = typer.Option(20000, min=1, metavar="N", help="Total optimizer steps (resumed runs count from 0).")
_MAX_MINUTES = typer.Option(None, min=0.0, metavar="MIN", help="Stop (and save) after this many minutes.")
_LR = typer.Option(2e-4, min=0.0, metavar="LR", help="Peak learning rate (warm-up, then cosine decay to 10%).")
_SEED = typer.Option(0, metavar="S", help="Seed of the data order, augmentation and initial weights.")
_EMA = typer.Option(0.999, min=0.0, max=1.0, metavar="D", help="Decay of the weights' moving average that is "
                    "saved (lower for short fine-tunes, e.g. 0.99).")
_CKPT = typer.Option(250, min=1, metavar="N", help="Save a checkpoint every N steps (and at the end or on Ctrl-C).")
_MAX_SIDE = typer.Option(None, min=16, metavar="PX", help="Downscale training videos so the longer side is at most "
                         "PX.")
_RESUME = typer.Option(True, "--resume/--restart", help="Continue the run in OUT if there is one (--restart: "
                       "start over).")


def _crop_option(default: int) -> typer.models.OptionInfo:
    return typer.Option(None, min=16, metavar="PX", help=f"Square training crop (default: {default}, or the largest "
                        "multiple of the model stride that fits the smallest training frame; the choice is printed).")


@app.command("train-vqgan")
@handles_errors
def train_vqgan(
    data: List[str] = _DATA,
    out: Path = typer.Option(..., "--out", metavar="DIR", help="Output autoencoder directory (resumed if it holds "
                             "a run)."),
    preset: ModelPreset = _PRESET,
    max_steps: int = _MAX_STEPS,
    max_minutes: Optional[float] = _MAX_MINUTES,
    batch_size: int = typer.Option(8, min=1, metavar="B", help="Triplets per step."),
    crop: Optional[int] = _crop_option(128),
    lr: float = _LR,
    seed: int = _SEED,
    ckpt_every: int = _CKPT,
    ema_decay: float = _EMA,
    max_side: Optional[int] = _MAX_SIDE,
    lpips_weights: Optional[Path] = typer.Option(None, metavar="FILE", help="Local torchvision VGG16 state dict to "
                                                 "add an LPIPS term (nothing is downloaded)."),
    disc_weight: float = typer.Option(0.0, min=0.0, metavar="W", help="PatchGAN loss weight (0 = off)."),
    disc_start: int = typer.Option(5000, min=0, metavar="STEP", help="Step at which the GAN loss starts."),
    init: Optional[Path] = typer.Option(None, metavar="DIR", help="Start from this autoencoder directory's weights."),
    freeze_encoder: bool = typer.Option(False, "--freeze-encoder", help="Train the decoder only: latents (and a "
                                        "denoiser trained on them) stay valid."),
    strides: str = _STRIDES,
    spans: str = _SPANS,
    kl_weight: float = typer.Option(3e-4, min=0.0, metavar="W", help="Weight of the latent's KL term."),
    w_ssim: float = typer.Option(0.2, min=0.0, metavar="W", help="Weight of the 1 - SSIM term of the frame loss."),
    w_census: float = typer.Option(0.5, min=0.0, metavar="W", help="Weight of the census term of the frame loss."),
    warm_start: Optional[Path] = typer.Option(None, metavar="DIR", help="Copy every same-named, same-shaped tensor "
                                              "of this autoencoder directory (e.g. an older model's decoder)."),
    on_samples: Optional[Path] = typer.Option(None, metavar="DIR", help="Model directory whose denoiser samples the "
                                              "latent of part of each batch (decoder fine-tuning; needs --init "
                                              "and --freeze-encoder)."),
    sample_mix: float = typer.Option(0.5, min=0.0, max=1.0, metavar="F", help="Fraction of each batch decoded "
                                     "from sampled latents with --on-samples."),
    sample_steps: str = typer.Option("", metavar="LIST", help="Sampler step counts for --on-samples, one drawn "
                                     "per batch (e.g. 1,2,4,8); empty = the model's default."),
    sample_temperature: Optional[float] = typer.Option(None, min=0.0, max=1.0, metavar="T", help="Sampler "
                                                       "temperature for --on-samples (default: the model's)."),
    pan: int = typer.Option(0, min=0, metavar="PX", help="Augment half the crops with a camera pan of up to PX "
                            "pixels per frame."),
    align: bool = typer.Option(True, "--align/--no-align", help="Align the neighbours on the middle frame "
                                                                "(block matching) before the decoder; --no-align "
                                                                "also warps bilinearly (as v1/v2 were trained)."),
    decoder_settings: DecoderSettings = typer.Option(
        DecoderSettings.init, help="With --init: run the decoder with the --init model's run-time settings "
        "(alignment, warp, static gate: fine-tune it as it runs) or the preset's."),
    resume: bool = _RESUME,
):
    """Train the autoencoder (posterior encoder, KL latent, interpolating decoder) on frame triplets."""
    _prepare_out(out, resume)
    _train("vqgan", data, out, crop, preset=preset.value, max_steps=max_steps, max_minutes=max_minutes,
           batch_size=batch_size, lr=lr, seed=seed, ckpt_every=ckpt_every, ema_decay=ema_decay, max_side=max_side,
           lpips_weights=str(lpips_weights) if lpips_weights else None, disc_weight=disc_weight,
           disc_start=disc_start, init_from=str(init) if init else None, freeze_encoder=freeze_encoder,
           strides=_ints(strides), pan=pan, align=align, spans=_ints(spans, "--spans", 2, True),
           kl_weight=kl_weight, w_ssim=w_ssim, w_census=w_census, warm_start=str(warm_start) if warm_start else None,
           on_samples=str(on_samples) if on_samples else None, sample_mix=sample_mix,
           sample_steps=_ints(sample_steps, "--sample-steps", 1, True), sample_temperature=sample_temperature,
           decoder_settings=decoder_settings.value)


@app.command("train-ldm")
@handles_errors
def train_ldm(
    data: List[str] = _DATA,
    vqgan: Path = typer.Option(..., "--vqgan", metavar="DIR", help="Autoencoder directory from train-vqgan."),
    out: Path = typer.Option(..., "--out", metavar="DIR", help="Output model directory (complete: usable by "
                             "double/eval)."),
    preset: ModelPreset = _PRESET,
    max_steps: int = _MAX_STEPS,
    max_minutes: Optional[float] = _MAX_MINUTES,
    batch_size: int = typer.Option(16, min=1, metavar="B", help="Triplets per step."),
    crop: Optional[int] = _crop_option(256),
    lr: float = _LR,
    seed: int = _SEED,
    ckpt_every: int = _CKPT,
    ema_decay: float = _EMA,
    max_side: Optional[int] = _MAX_SIDE,
    strides: str = _STRIDES,
    spans: str = _SPANS,
    init: Optional[Path] = typer.Option(None, metavar="DIR", help="Start from this model directory's denoiser "
                                        "and latent scale (its autoencoder's encoder must be --vqgan's)."),
    decode_weight: float = typer.Option(0.0, min=0.0, metavar="W", help="Add W x the pixel loss (L1, SSIM, "
                                        "census) of the frame decoded from the predicted latent (0 = latent "
                                        "loss only)."),
    chain_share: float = typer.Option(0.0, min=0.0, max=1.0, metavar="F", help="Train this share of each batch "
                                      "on the denoiser's inputs at later steps of its own sampling chain (the "
                                      "model's default sampler and temperature, 2, 4, ... --chain-steps steps), "
                                      "scored against the true latent (0 = plain denoising loss)."),
    chain_steps: int = typer.Option(8, min=2, metavar="N", help="With --chain-share: the longest chain."),
    resume: bool = _RESUME,
):
    """Train the denoising U-Net on the latents of a trained autoencoder."""
    _prepare_out(out, resume)
    _train("ldm", data, out, crop, vqgan_dir=str(vqgan), preset=preset.value, max_steps=max_steps,
           max_minutes=max_minutes, batch_size=batch_size, lr=lr, seed=seed, ckpt_every=ckpt_every, ema_decay=ema_decay,
           max_side=max_side, strides=_ints(strides), spans=_ints(spans, "--spans", 2, True),
           init_from=str(init) if init else None, decode_weight=decode_weight, chain_share=chain_share,
           chain_steps=chain_steps)


def _prepare_out(out: Path, resume: bool) -> None:
    from vfi_cli.training.loop import STATE

    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a directory")
    if not resume and (out / STATE).exists():
        (out / STATE).unlink()
