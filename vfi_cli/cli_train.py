"""The `vfi train-vqgan` / `vfi train-ldm` commands (registered on vfi_cli.cli.app)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from vfi_cli.cli import _fail, app, err, handles_errors, say
from vfi_cli.config import PRESETS

ModelPreset = Enum("ModelPreset", {name: name for name in PRESETS}, type=str)  # tiny | small | base


def _strides(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        _fail(f"--strides must be positive integers separated by commas, got {text!r}")
    return values


def _train(kind: str, data: List[str], out: Path, crop: Optional[int], **kw) -> None:
    from vfi_cli.train import TrainConfig, train
    from vfi_cli.train_crop import choose_crop

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
    max_side: Optional[int] = _MAX_SIDE,
    lpips_weights: Optional[Path] = typer.Option(None, metavar="FILE", help="Local torchvision VGG16 state dict to "
                                                 "add an LPIPS term (nothing is downloaded)."),
    disc_weight: float = typer.Option(0.0, min=0.0, metavar="W", help="PatchGAN loss weight (0 = off)."),
    disc_start: int = typer.Option(5000, min=0, metavar="STEP", help="Step at which the GAN loss starts."),
    init: Optional[Path] = typer.Option(None, metavar="DIR", help="Start from this autoencoder directory's weights."),
    freeze_encoder: bool = typer.Option(False, "--freeze-encoder", help="Train the decoder only: latents (and a "
                                        "denoiser trained on them) stay valid."),
    strides: str = typer.Option("1,2,3", metavar="LIST", help="Temporal strides of the training triplets, "
                                "comma-separated."),
    pan: int = typer.Option(0, min=0, metavar="PX", help="Augment half the crops with a camera pan of up to PX "
                            "pixels per frame."),
    align: bool = typer.Option(True, "--align/--no-align", help="Align the neighbours on the middle frame "
                                                                "(block matching) before the decoder; --no-align "
                                                                "also warps bilinearly (as v1/v2 were trained)."),
    resume: bool = _RESUME,
):
    """Train the autoencoder (encoder, codebook, interpolation decoder) on frame triplets."""
    _prepare_out(out, resume)
    _train("vqgan", data, out, crop, preset=preset.value, max_steps=max_steps, max_minutes=max_minutes,
           batch_size=batch_size, lr=lr, seed=seed, ckpt_every=ckpt_every, max_side=max_side,
           lpips_weights=str(lpips_weights) if lpips_weights else None, disc_weight=disc_weight,
           disc_start=disc_start, init_from=str(init) if init else None, freeze_encoder=freeze_encoder,
           strides=_strides(strides), pan=pan, align=align)


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
    max_side: Optional[int] = _MAX_SIDE,
    resume: bool = _RESUME,
):
    """Train the denoising U-Net on the latents of a trained autoencoder."""
    _prepare_out(out, resume)
    _train("ldm", data, out, crop, vqgan_dir=str(vqgan), preset=preset.value, max_steps=max_steps,
           max_minutes=max_minutes, batch_size=batch_size, lr=lr, seed=seed, ckpt_every=ckpt_every,
           max_side=max_side)


def _prepare_out(out: Path, resume: bool) -> None:
    from vfi_cli.train import STATE

    if out.exists() and not out.is_dir():
        _fail(f"--out {out} exists and is not a directory")
    if not resume and (out / STATE).exists():
        (out / STATE).unlink()
