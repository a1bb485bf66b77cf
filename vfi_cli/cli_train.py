"""The `vfi train-vqgan` / `vfi train-ldm` commands (registered on vfi_cli.cli.app)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from vfi_cli.cli import _fail, app, err, handles_errors

def _strides(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        _fail(f"--strides must be positive integers separated by commas, got {text!r}")
    return values


def _train(kind: str, data: List[str], out: Path, **kw) -> None:
    from vfi_cli.train import TrainConfig, train

    tc = TrainConfig(kind=kind, data=tuple(str(d) for d in data), out=str(out), **kw)
    train(tc, console=err)


_DATA = typer.Option(..., "--data", help="Video file, folder of videos, Vimeo-90k triplet root, or 'synthetic'. Repeatable.")


@app.command("train-vqgan")
@handles_errors
def train_vqgan(
    data: List[str] = _DATA,
    out: Path = typer.Option(..., "--out", help="Output autoencoder directory (resumed if it holds a run)."),
    preset: str = typer.Option("small", help="Model size: tiny | small | base."),
    max_steps: int = typer.Option(20000, help="Total optimizer steps."),
    max_minutes: Optional[float] = typer.Option(None, help="Stop (and save) after this many minutes."),
    batch_size: int = typer.Option(8, min=1),
    crop: int = typer.Option(128, min=16, help="Square training crop in pixels."),
    lr: float = typer.Option(2e-4),
    seed: int = typer.Option(0),
    ckpt_every: int = typer.Option(250, min=1),
    max_side: Optional[int] = typer.Option(None, help="Downscale training videos to this longer side."),
    lpips_weights: Optional[Path] = typer.Option(None, help="Local torchvision VGG16 state dict to add an LPIPS term."),
    disc_weight: float = typer.Option(0.0, help="PatchGAN weight (0 = off)."),
    disc_start: int = typer.Option(5000, help="Step at which the GAN loss starts."),
    init: Optional[Path] = typer.Option(None, help="Start from this autoencoder directory's weights."),
    freeze_encoder: bool = typer.Option(False, help="Train the decoder only: latents (and a denoiser trained "
                                                    "on them) stay valid."),
    strides: str = typer.Option("1,2,3", help="Temporal strides of the training triplets, comma-separated."),
    pan: int = typer.Option(0, min=0, help="Augment half the crops with a camera pan of up to PAN pixels per frame."),
    align: bool = typer.Option(True, "--align/--no-align", help="Align the neighbours on the middle frame "
                                                                "(block matching) before the decoder; --no-align "
                                                                "also warps bilinearly (as v1/v2 were trained)."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue the run in OUT if there is one."),
):
    """Train the autoencoder (encoder, codebook, interpolation decoder) on frame triplets."""
    _prepare_out(out, resume)
    _train("vqgan", data, out, preset=preset, max_steps=max_steps, max_minutes=max_minutes,
           batch_size=batch_size, crop=crop, lr=lr, seed=seed, ckpt_every=ckpt_every, max_side=max_side,
           lpips_weights=str(lpips_weights) if lpips_weights else None, disc_weight=disc_weight,
           disc_start=disc_start, init_from=str(init) if init else None, freeze_encoder=freeze_encoder,
           strides=_strides(strides), pan=pan, align=align)


@app.command("train-ldm")
@handles_errors
def train_ldm(
    data: List[str] = _DATA,
    vqgan: Path = typer.Option(..., "--vqgan", help="Autoencoder directory from train-vqgan."),
    out: Path = typer.Option(..., "--out", help="Output model directory (complete: usable by double/eval)."),
    preset: str = typer.Option("small", help="U-Net size: tiny | small | base."),
    max_steps: int = typer.Option(20000),
    max_minutes: Optional[float] = typer.Option(None),
    batch_size: int = typer.Option(16, min=1),
    crop: int = typer.Option(256, min=16),
    lr: float = typer.Option(2e-4),
    seed: int = typer.Option(0),
    ckpt_every: int = typer.Option(250, min=1),
    max_side: Optional[int] = typer.Option(None),
    resume: bool = typer.Option(True, "--resume/--restart"),
):
    """Train the denoising U-Net on the latents of a trained autoencoder."""
    _prepare_out(out, resume)
    _train("ldm", data, out, vqgan_dir=str(vqgan), preset=preset, max_steps=max_steps,
           max_minutes=max_minutes, batch_size=batch_size, crop=crop, lr=lr, seed=seed,
           ckpt_every=ckpt_every, max_side=max_side)


def _prepare_out(out: Path, resume: bool) -> None:
    from vfi_cli.train import STATE

    if out.exists() and not out.is_dir():
        _fail(f"--out {out} exists and is not a directory")
    if not resume and (out / STATE).exists():
        (out / STATE).unlink()


