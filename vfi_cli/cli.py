"""The `vfi` command line: thin Typer commands; failures are one line on stderr and exit 1."""

from __future__ import annotations

import functools
import sys
import time
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.text import Text

from vfi_cli.errors import VfiError
from vfi_cli.frames import CUT_THRESHOLD
from vfi_cli.tiling import DEFAULT_TILE_PIXELS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Double a video's frame rate with a latent diffusion interpolator.")
err = Console(stderr=True)


def say(message: str) -> None:
    """One plain line on stderr (paths may contain [brackets]: no markup)."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 1) -> None:
    err.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or "out of memory" in str(e) or "can't allocate memory" in str(e)


def handles_errors(fn):
    """Map VfiError (and Ctrl-C) to one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VfiError as e:
            _fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except (MemoryError, RuntimeError) as e:
            if not _is_oom(e):
                raise
            _fail("out of memory: lower --batch-size")
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            _fail(f"{where}{e.strerror or e}")

    return wrapper


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Sampler(str, Enum):
    ddim = "ddim"
    dpm = "dpm"
    ddpm = "ddpm"


class Latent(str, Enum):
    sampled = "sampled"
    oracle = "oracle"
    noise = "noise"


class Method(str, Enum):
    model = "model"
    blend = "blend"
    repeat = "repeat"


@app.command()
@handles_errors
def double(
    input: Path = typer.Argument(..., help="Input video (any codec/container FFmpeg reads)."),
    output: Path = typer.Argument(..., help="Output video; the extension picks the container."),
    weights: Optional[Path] = typer.Option(None, help="Model directory (default: the shipped weights)."),
    times: int = typer.Option(1, min=1, max=4, help="Multiply the frame rate by 2**TIMES."),
    steps: Optional[int] = typer.Option(None, min=1, help="Sampler steps (default: the model's)."),
    sampler: Optional[Sampler] = typer.Option(None, help="Diffusion sampler (default: the model's)."),
    seed: int = typer.Option(0, min=0, help="Noise seed: the same seed gives the same output."),
    batch_size: int = typer.Option(4, min=1, help="Frame pairs per model call."),
    tile_pixels: int = typer.Option(DEFAULT_TILE_PIXELS, min=0, help="Larger frames run in overlapping tiles of at "
                                    "most this many pixels (bounds memory on 4K; 0 = never tile)."),
    device: Device = typer.Option(Device.auto, help="Where the model runs."),
    precision: str = typer.Option("auto", help="auto | fp32 | bf16 | fp16 (half precision on CUDA only)."),
    scene_threshold: float = typer.Option(CUT_THRESHOLD, min=0.0, help="Scene-cut gate: mean luma change in levels."),
    codec: Optional[str] = typer.Option(None, help="Video encoder (default by extension, e.g. libx264)."),
    crf: int = typer.Option(17, min=0, max=63, help="Constant rate factor (lower = better)."),
    preset: str = typer.Option("medium", help="Encoder preset (x264/x265)."),
    lossless: bool = typer.Option(False, help="Bit-exact originals (FFV1 in .mkv, x264rgb qp 0 in .mp4/.mov, lossless VP9 in .webm)."),
    overwrite: bool = typer.Option(False, help="Replace OUTPUT if it exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    stats_json: Optional[Path] = typer.Option(None, help="Also write the run's counts and per-stage times as JSON."),
):
    """Double (or 2^K-multiply) the frame rate of INPUT into OUTPUT."""
    from vfi_cli.pipeline import DoubleOptions, double_frame_rate

    interp = _prepare_run(input, output, overwrite, stats_json, weights=weights, device=device, steps=steps,
                          sampler=sampler, seed=seed, precision=precision, tile_pixels=tile_pixels)
    opts = DoubleOptions(times=times, batch_size=batch_size, scene_threshold=scene_threshold, codec=codec,
                         crf=crf, preset=preset, lossless=lossless, overwrite=overwrite)
    s = _with_progress("doubling", quiet, lambda cb: double_frame_rate(input, output, interp, opts, on_progress=cb))
    _report_run(s, interp, input, output, stats_json)


def _prepare_run(input: Path, output: Path, overwrite: bool, stats_json: Optional[Path], *, weights, device,
                 steps, sampler, seed, precision, tile_pixels, before_load=None):
    """Checks shared by `double` and `retime` (paths, --precision, --stats-json), then the model;
    `before_load()` runs more checks first (so a bad request fails before the slow load)."""
    from vfi_cli.interpolator import Interpolator
    from vfi_cli.video import check_paths

    if precision not in ("auto", "fp32", "bf16", "fp16"):
        _fail(f"--precision must be auto, fp32, bf16 or fp16, not {precision!r}", 2)
    check_paths(input, output, overwrite)
    if stats_json is not None and not stats_json.parent.is_dir():
        _fail(f"--stats-json: directory {stats_json.parent} does not exist")
    if before_load is not None:
        before_load()
    return Interpolator.load(weights, device=device.value, steps=steps, sampler=sampler.value if sampler else None,
                             seed=seed, precision=precision, tile_pixels=tile_pixels)


def _with_progress(label: str, quiet: bool, run):
    """run(on_progress) under a progress bar of input frames (hidden with --quiet); its result."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[fps]:.2f} fps"), TimeRemainingColumn(),
                        console=err, disable=quiet, transient=True)
    with progress:
        task = progress.add_task(label, total=None, fps=0.0)
        t0 = time.perf_counter()

        def on_progress(done: int, total: Optional[int]) -> None:
            fps = done / max(1e-9, time.perf_counter() - t0)
            progress.update(task, completed=done, total=total, fps=fps)

        return run(on_progress)


def _report_run(s, interp, input: Path, output: Path, stats_json: Optional[Path]) -> None:
    """The run's one-line summary on stderr (and its counts/timings as JSON with --stats-json)."""
    if stats_json is not None:
        import dataclasses
        import json

        stats_json.write_text(json.dumps({**dataclasses.asdict(s), "sampler": interp.sampler_name,
                                          "steps": interp.steps, "device": str(interp.device)}, indent=1))
    extra = f", {s.corrupt_packets} corrupt packets skipped" if s.corrupt_packets else ""
    say(f"{input.name} -> {output.name}: {s.frames_in} -> {s.frames_out} frames, "
        f"{s.synthesized} synthesized ({interp.describe()}), {s.cuts} scene cuts and "
        f"{s.duplicates} repeated frames copied{extra}, {s.seconds:.1f} s "
        f"({s.frames_in / max(s.seconds, 1e-9):.2f} input frames/s)")


@app.command("eval")
@handles_errors
def eval_(
    paths: List[Path] = typer.Argument(..., help="Videos, folders of videos, or Vimeo-90k triplet folders."),
    weights: Optional[Path] = typer.Option(None, help="Model directory (default: the shipped weights)."),
    method: Method = typer.Option(Method.model, help="model, or a baseline through the same code path."),
    steps: Optional[int] = typer.Option(None, min=1, help="Sampler steps (default: the model's)."),
    sampler: Optional[Sampler] = typer.Option(None, help="Diffusion sampler (default: the model's)."),
    seed: int = typer.Option(0, min=0),
    batch_size: int = typer.Option(4, min=1),
    max_pairs: Optional[int] = typer.Option(None, min=1, help="At most this many triplets per clip."),
    fid: bool = typer.Option(False, "--fid", help='Add FID (needs: pip install "vfi[fid]").'),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every number and its provenance here."),
    save_examples: Optional[Path] = typer.Option(None, help="Write PNG strips x0|pred|truth|x2|error here."),
    latent: Latent = typer.Option(Latent.sampled, help="Latent the model decodes: sampled by the denoiser; "
                                                      "oracle = of the true middle frame (a perfect denoiser); "
                                                      "noise = the sampler's initial noise, no denoising."),
    device: Device = typer.Option(Device.auto),
    factor: int = typer.Option(2, min=2, max=16, help="Keep every FACTOR-th frame and score the FACTOR-1 frames "
                                                      "made between each kept pair (at t = 1/FACTOR, ...)."),
):
    """Score interpolated frames against the dropped truth: PSNR, SSIM, colour bias, FID (also per t)."""
    import json

    from rich.console import Console

    from vfi_cli import evaluate as ev
    from vfi_cli import report

    provenance: dict = {"method": method.value, "max_pairs": max_pairs, "batch_size": batch_size, "factor": factor}
    if method is Method.model:
        from vfi_cli.interpolator import Interpolator

        interp = Interpolator.load(weights, device=device.value, steps=steps,
                                   sampler=sampler.value if sampler else None, seed=seed)
        fn = interp.sequential_pairs(latent.value)  # noise keyed by a running pair index: --batch-size changes nothing
        provenance.update(weights=str(weights or "default"), weights_sha256=interp.sha256, latent=latent.value,
                          sampler=interp.sampler_name, steps=interp.steps, seed=seed, device=str(interp.device))
    else:
        fn = ev.BASELINES[method.value]
    from vfi_cli.interpolator import resolve_device

    fid_device = str(resolve_device(device.value))
    result = ev.evaluate([Path(p) for p in paths], fn, batch_size=batch_size, max_pairs=max_pairs, fid=fid,
                         save_examples=save_examples, fid_device=fid_device,
                         with_truth=method is Method.model and latent is Latent.oracle, factor=factor)
    title = f"vfi eval: {method.value}" + (f" (latent: {latent.value})" if method is Method.model else "")
    title += f", factor {factor}" if factor != 2 else ""
    Console().print(report.render_table(result, title=title))
    if json_out is not None:
        try:
            json_out.write_text(json.dumps(report.result_to_json(result, provenance), indent=1, allow_nan=False))
        except OSError as e:
            _fail(f"cannot write {json_out}: {e.strerror}")


def _strides(text: str, allow_empty: bool = False) -> tuple[int, ...]:
    """--strides / --spans text -> integers (spans: each >= 2, may be empty)."""
    if allow_empty and not text.strip():
        return ()
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    low = 2 if allow_empty else 1
    if not values or min(values) < low:
        name = "--spans" if allow_empty else "--strides"
        _fail(f"{name} must be integers >= {low} separated by commas, got {text!r}")
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
    spans: str = typer.Option("", help="Also train on uneven triplets (i, i+k, i+n) for these n (e.g. 3: frame "
                                       "times 1/3, 2/3), comma-separated; empty = middle frames only."),
    kl_weight: float = typer.Option(3e-4, help="Weight of the latent's KL term."),
    warm_start: Optional[Path] = typer.Option(None, help="Copy every same-named, same-shaped tensor of this "
                                                         "autoencoder directory (e.g. an older model's decoder)."),
    on_samples: Optional[Path] = typer.Option(None, help="Model directory whose denoiser samples the latent of "
                                                         "part of each batch (decoder fine-tuning; needs "
                                                         "--init and --freeze-encoder)."),
    sample_mix: float = typer.Option(0.5, min=0.0, max=1.0, help="Fraction of each batch decoded from sampled "
                                                                   "latents with --on-samples."),
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
           strides=_strides(strides), pan=pan, align=align, spans=_strides(spans, allow_empty=True),
           kl_weight=kl_weight, warm_start=str(warm_start) if warm_start else None,
           on_samples=str(on_samples) if on_samples else None, sample_mix=sample_mix)


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
    strides: str = typer.Option("1,2,3", help="Temporal strides of the training triplets, comma-separated."),
    spans: str = typer.Option("", help="Also train on uneven triplets (i, i+k, i+n) for these n, comma-separated."),
    resume: bool = typer.Option(True, "--resume/--restart"),
):
    """Train the denoising U-Net on the latents of a trained autoencoder."""
    _prepare_out(out, resume)
    _train("ldm", data, out, vqgan_dir=str(vqgan), preset=preset, max_steps=max_steps,
           max_minutes=max_minutes, batch_size=batch_size, crop=crop, lr=lr, seed=seed,
           ckpt_every=ckpt_every, max_side=max_side, strides=_strides(strides),
           spans=_strides(spans, allow_empty=True))


def _prepare_out(out: Path, resume: bool) -> None:
    from vfi_cli.train import STATE

    if out.exists() and not out.is_dir():
        _fail(f"--out {out} exists and is not a directory")
    if not resume and (out / STATE).exists():
        (out / STATE).unlink()


def _as_double(name: str):
    """`vfi double`'s declaration of option NAME (one source for the options both commands share)."""
    import inspect

    return inspect.signature(double).parameters[name].default


@app.command()
@handles_errors
def retime(
    input: Path = _as_double("input"),
    output: Path = _as_double("output"),
    fps: Optional[str] = typer.Option(None, help="Output frame rate: a number or an exact fraction (60000/1001)."),
    factor: Optional[str] = typer.Option(None, help="Output rate = input rate x FACTOR (any number above 1, "
                                                    "e.g. 2.5 or 3)."),
    weights: Optional[Path] = _as_double("weights"),
    steps: Optional[int] = _as_double("steps"),
    sampler: Optional[Sampler] = _as_double("sampler"),
    seed: int = _as_double("seed"),
    batch_size: int = _as_double("batch_size"),
    tile_pixels: int = _as_double("tile_pixels"),
    device: Device = _as_double("device"),
    precision: str = _as_double("precision"),
    scene_threshold: float = _as_double("scene_threshold"),
    codec: Optional[str] = _as_double("codec"),
    crf: int = _as_double("crf"),
    preset: str = _as_double("preset"),
    lossless: bool = _as_double("lossless"),
    overwrite: bool = _as_double("overwrite"),
    quiet: bool = _as_double("quiet"),
    stats_json: Optional[Path] = _as_double("stats_json"),
):
    """Convert INPUT to any higher frame rate (--fps or --factor); new frames sit at their exact times."""
    from vfi_cli import retime as rt
    from vfi_cli.video import probe

    if (fps is None) == (factor is None):
        _fail("give exactly one of --fps RATE and --factor X", 2)
    try:
        wanted = rt.parse_rate(fps, "--fps") if fps is not None else None
        by = rt.parse_rate(factor, "--factor") if factor is not None else None
    except rt.RateError as e:
        _fail(str(e), 2)
    rate: list = []
    interp = _prepare_run(input, output, overwrite, stats_json, weights=weights, device=device, steps=steps,
                          sampler=sampler, seed=seed, precision=precision, tile_pixels=tile_pixels,
                          before_load=lambda: rate.append(rt.target_rate(probe(input), wanted, by)))
    opts = rt.RetimeOptions(rate=rate[0], batch_size=batch_size, scene_threshold=scene_threshold, codec=codec,
                            crf=crf, preset=preset, lossless=lossless, overwrite=overwrite)
    s = _with_progress("retiming", quiet, lambda cb: rt.retime_video(input, output, interp, opts, on_progress=cb))
    _report_run(s, interp, input, output, stats_json)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
