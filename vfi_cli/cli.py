"""The `vfi` command line: thin Typer commands; failures are one line on stderr and exit 1."""

from __future__ import annotations

import sys
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import List, Optional

import typer

from vfi_cli import allocator, cli_train
from vfi_cli.frames import CUT_THRESHOLD
from vfi_cli.tiling import DEFAULT_TILE_PIXELS
from vfi_cli.media.encoders import X264_PRESETS
from vfi_cli.messages import err, fail, handles_errors, say, warn

# Typer prints an argument's Python type beside its name ("INPUT <path>", "PATH... <list[Path]>");
# our arguments' metavars and help say what they are, so show the name alone.
typer.core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Double a video's frame rate: block matching, a flow decoder and a diffusion-sampled latent.")
class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


Preset = Enum("Preset", {name: name for name in X264_PRESETS}, type=str)  # x264's speed presets


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
    input: Path = typer.Argument(..., metavar="INPUT", help="Input video (any codec/container FFmpeg reads)."),
    output: Path = typer.Argument(..., metavar="OUTPUT", help="Output video; the extension picks the container "
                                  "(.mp4, .mov, .mkv, .webm)."),
    weights: Optional[Path] = typer.Option(None, metavar="DIR", help="Model directory (default: the shipped "
                                           "weights)."),
    times: int = typer.Option(1, min=1, max=4, metavar="K", help="Multiply the frame rate by 2**K."),
    steps: Optional[int] = typer.Option(None, min=1, metavar="N", help="Sampler steps (default: the model's)."),
    sampler: Optional[Sampler] = typer.Option(None, help="Diffusion sampler (default: the model's)."),
    temperature: Optional[float] = typer.Option(None, min=0.0, max=1.0, metavar="T", help="Scale of the sampler's "
                                                "noise: 1 = sample the model's distribution, 0 = stay at its "
                                                "mean (default: the model's)."),
    seed: int = typer.Option(0, min=0, metavar="S", help="Noise seed: the same seed gives the same output."),
    batch_size: int = typer.Option(4, min=1, metavar="B", help="Frame pairs per model call."),
    tile_pixels: int = typer.Option(DEFAULT_TILE_PIXELS, min=0, metavar="P", help="Larger frames run in "
                                    "overlapping tiles of at most P pixels (bounds memory on 4K; 0 = never tile)."),
    device: Device = typer.Option(Device.auto, help="Where the model runs."),
    precision: Precision = typer.Option(Precision.auto, help="Model arithmetic; bf16/fp16 need CUDA "
                                        "(auto: bf16 on CUDA, fp32 on CPU)."),
    scene_threshold: float = typer.Option(CUT_THRESHOLD, min=0.0, metavar="LEVELS",
                                          help="Scene-cut gate: mean luma change in 8-bit levels."),
    codec: Optional[str] = typer.Option(None, metavar="NAME", help="Video encoder, e.g. libx264, libx265, "
                                        "libvpx-vp9, ffv1 (default by extension)."),
    crf: int = typer.Option(17, min=0, max=63, metavar="Q", help="Constant rate factor (lower = better)."),
    preset: Preset = typer.Option("medium", help="Encoder speed preset (x264/x265; mapped to VP9's cpu-used)."),
    lossless: bool = typer.Option(False, "--lossless", help="Bit-exact originals (FFV1 in .mkv, x264rgb qp 0 in "
                                  ".mp4/.mov, lossless VP9 in .webm; sources above 8 bits: .mkv only)."),
    allow_damaged: bool = typer.Option(False, "--allow-damaged", help="Process what is readable of a truncated "
                                       "or corrupt INPUT (a warning says what is missing) instead of refusing it."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    stats_json: Optional[Path] = typer.Option(None, metavar="FILE", help="Also write the run's counts and "
                                              "per-stage times as JSON."),
):
    """Double (or 2^K-multiply) the frame rate of INPUT into OUTPUT."""
    from vfi_cli.pipeline import DoubleOptions, double_frame_rate

    interp = _prepare_run(input, output, overwrite, stats_json, weights=weights, device=device, steps=steps,
                          sampler=sampler, temperature=temperature, seed=seed, precision=precision,
                          tile_pixels=tile_pixels)
    opts = DoubleOptions(times=times, batch_size=batch_size, scene_threshold=scene_threshold, codec=codec,
                         crf=crf, preset=preset.value, lossless=lossless, overwrite=overwrite,
                         allow_damaged=allow_damaged)
    s = _with_progress(input, 2 ** times, "doubling", quiet,
                       lambda cb: double_frame_rate(input, output, interp, opts, on_progress=cb))
    _report_run(s, interp, input, output, stats_json)


def _prepare_run(input: Path, output: Path, overwrite: bool, stats_json: Optional[Path], *, weights, device,
                 steps, sampler, temperature, seed, precision, tile_pixels, before_load=None):
    """Checks shared by `double` and `retime` (paths, --stats-json), then the model;
    `before_load()` runs more checks first (so a bad request fails before the slow load)."""
    from vfi_cli.interpolator import Interpolator
    from vfi_cli.media.paths import check_paths

    check_paths(input, output, overwrite)
    if stats_json is not None and not stats_json.parent.is_dir():
        fail(f"--stats-json: directory {stats_json.parent} does not exist")
    if before_load is not None:
        before_load()
    return Interpolator.load(weights, device=device.value, steps=steps, sampler=sampler.value if sampler else None,
                             temperature=temperature, seed=seed, precision=precision.value, tile_pixels=tile_pixels)


def _with_progress(input: Path, factor, verb: str, quiet: bool, run):
    """run(on_progress) under the labelled progress line (input frames, the rate change, ETA;
    hidden with --quiet); its result."""
    from vfi_cli.progress import DoublingProgress
    from vfi_cli.media.probe import probe

    with DoublingProgress(err, probe(input).frame_rate, factor, disable=quiet, verb=verb) as progress:
        return run(progress.update)


def _report_run(s, interp, input: Path, output: Path, stats_json: Optional[Path]) -> None:
    """The run's one-line summary on stderr, warnings first (and its counts/timings as JSON with --stats-json)."""
    if stats_json is not None:
        import dataclasses
        import json

        stats_json.write_text(json.dumps({**dataclasses.asdict(s), "sampler": interp.sampler_name,
                                          "steps": interp.steps, "temperature": interp.temperature,
                                          "device": str(interp.device)}, indent=1))
    for note in s.notes:
        warn(f"{output}: {note}")
    if s.damage:
        warn(f"{s.damage}; processed what was readable")
    extra = f", {s.corrupt_packets} corrupt packets skipped" if s.corrupt_packets else ""
    say(f"{input.name} -> {output.name}: {s.frames_in} -> {s.frames_out} frames, "
        f"{s.synthesized} synthesized ({interp.describe()}), {s.cuts} scene cuts and "
        f"{s.duplicates} repeated frames copied{extra}, {s.seconds:.1f} s "
        f"({s.frames_in / max(s.seconds, 1e-9):.2f} input frames/s)")


def _as_double(name: str):
    """`vfi double`'s declaration of option NAME (one source for the options both commands share)."""
    import inspect

    return inspect.signature(double).parameters[name].default


@app.command("eval")
@handles_errors
def eval_(
    paths: List[Path] = typer.Argument(..., metavar="PATH...", help="Videos, folders of videos, or Vimeo-90k "
                                       "triplet folders."),
    weights: Optional[Path] = typer.Option(None, metavar="DIR", help="Model directory (default: the shipped "
                                           "weights)."),
    method: Method = typer.Option(Method.model, help="The model, or a baseline (frame blending, repetition) "
                                  "through the same code path."),
    steps: Optional[int] = typer.Option(None, min=1, metavar="N", help="Sampler steps (default: the model's)."),
    sampler: Optional[Sampler] = typer.Option(None, help="Diffusion sampler (default: the model's)."),
    temperature: Optional[float] = _as_double("temperature"),
    seed: int = typer.Option(0, min=0, metavar="S", help="Noise seed."),
    batch_size: int = typer.Option(4, min=1, metavar="B", help="Triplets per model call."),
    max_pairs: Optional[int] = typer.Option(None, min=1, metavar="N", help="At most N triplets per clip."),
    fid: bool = typer.Option(False, "--fid", help='Add FID (needs: pip install "vfi[fid]").'),
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Write every number and its "
                                            "provenance here."),
    save_examples: Optional[Path] = typer.Option(None, metavar="DIR", help="Write PNG strips x0|pred|truth|x2|error "
                                                 "here."),
    latent: Latent = typer.Option(Latent.sampled, help="Latent the model decodes: sampled by the denoiser; "
                                                      "oracle = of the true middle frame (a perfect denoiser); "
                                                      "noise = the sampler's initial noise, no denoising."),
    device: Device = typer.Option(Device.auto, help="Where the model runs."),
    factor: int = typer.Option(2, min=2, max=16, metavar="K", help="Keep every K-th frame and score the K-1 frames "
                                                                   "made between each kept pair (at t = 1/K, ...)."),
):
    """Score interpolated frames against the dropped truth: PSNR, SSIM, colour bias, FID (also per t)."""
    import json

    from rich.console import Console

    from vfi_cli.evaluation import protocol as ev
    from vfi_cli.evaluation import report, runner

    provenance: dict = {"method": method.value, "max_pairs": max_pairs, "batch_size": batch_size, "factor": factor}
    if method is Method.model:
        from vfi_cli.interpolator import Interpolator

        interp = Interpolator.load(weights, device=device.value, steps=steps,
                                   sampler=sampler.value if sampler else None, temperature=temperature, seed=seed)
        fn = interp.sequential_pairs(latent.value)  # noise keyed by a running pair index: --batch-size changes nothing
        provenance.update(weights=str(weights or "default"), weights_sha256=interp.sha256, latent=latent.value,
                          sampler=interp.sampler_name, steps=interp.steps, temperature=interp.temperature,
                          seed=seed, device=str(interp.device))
    else:
        fn = ev.BASELINES[method.value]
    from vfi_cli.interpolator import resolve_device

    fid_device = str(resolve_device(device.value))
    result = runner.evaluate([Path(p) for p in paths], fn, batch_size=batch_size, max_pairs=max_pairs, fid=fid,
                             save_examples=save_examples, fid_device=fid_device,
                             with_truth=method is Method.model and latent is Latent.oracle, factor=factor)
    title = f"vfi eval: {method.value}" + (f" (latent: {latent.value})" if method is Method.model else "")
    title += f", factor {factor}" if factor != 2 else ""
    Console().print(report.render_table(result, title=title))
    if json_out is not None:
        try:
            json_out.write_text(json.dumps(report.result_to_json(result, provenance), indent=1, allow_nan=False))
        except OSError as e:
            fail(f"cannot write {json_out}: {e.strerror}")


@app.command()
@handles_errors
def retime(
    input: Path = _as_double("input"),
    output: Path = _as_double("output"),
    fps: Optional[str] = typer.Option(None, metavar="RATE", help="Output frame rate: a number or an exact fraction "
                                      "(60000/1001)."),
    factor: Optional[str] = typer.Option(None, metavar="X", help="Output rate = input rate x X (any number above 1, "
                                         "e.g. 2.5 or 3)."),
    weights: Optional[Path] = _as_double("weights"),
    steps: Optional[int] = _as_double("steps"),
    sampler: Optional[Sampler] = _as_double("sampler"),
    temperature: Optional[float] = _as_double("temperature"),
    seed: int = _as_double("seed"),
    batch_size: int = _as_double("batch_size"),
    tile_pixels: int = _as_double("tile_pixels"),
    device: Device = _as_double("device"),
    precision: Precision = _as_double("precision"),
    scene_threshold: float = _as_double("scene_threshold"),
    codec: Optional[str] = _as_double("codec"),
    crf: int = _as_double("crf"),
    preset: Preset = _as_double("preset"),
    lossless: bool = _as_double("lossless"),
    allow_damaged: bool = _as_double("allow_damaged"),
    overwrite: bool = _as_double("overwrite"),
    quiet: bool = _as_double("quiet"),
    stats_json: Optional[Path] = _as_double("stats_json"),
):
    """Convert INPUT to any higher frame rate (--fps or --factor); new frames sit at their exact times."""
    from vfi_cli import retime as rt
    from vfi_cli.media.probe import probe

    if (fps is None) == (factor is None):
        fail("give exactly one of --fps RATE and --factor X", 2)
    try:
        wanted = rt.parse_rate(fps, "--fps") if fps is not None else None
        by = rt.parse_rate(factor, "--factor") if factor is not None else None
    except rt.RateError as e:
        fail(str(e), 2)
    rate: list = []
    interp = _prepare_run(input, output, overwrite, stats_json, weights=weights, device=device, steps=steps,
                          sampler=sampler, temperature=temperature, seed=seed, precision=precision,
                          tile_pixels=tile_pixels,
                          before_load=lambda: rate.append(rt.target_rate(probe(input), wanted, by)))
    opts = rt.RetimeOptions(rate=rate[0], batch_size=batch_size, scene_threshold=scene_threshold, codec=codec,
                            crf=crf, preset=preset.value, lossless=lossless, overwrite=overwrite,
                            allow_damaged=allow_damaged)
    s = _with_progress(input, rate[0] / Fraction(probe(input).frame_rate), "retiming", quiet,
                       lambda cb: rt.retime_video(input, output, interp, opts, on_progress=cb))
    _report_run(s, interp, input, output, stats_json)


app.add_typer(cli_train.app)  # train-vqgan, train-ldm (they import vfi_cli.training only when run)


def main() -> None:
    """Console-script entry point (`vfi`, `python -m vfi_cli`): a whole job per process, so the
    allocator keeps freed memory for the next batch (vfi_cli/allocator.py)."""
    allocator.tune()
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
