"""Baselines for the drop-frames protocol (factor K, default 2), scored by the same code as `vfi eval`.

ffmpeg's motion-compensated ``minterpolate`` runs through PyAV's filter graph:
the kept frames f[0], f[K], f[2K], ... are fed at 1/K of the source rate (pts k in a
time base of K/r) and the filter is asked for the source rate r, so output n
lands at time n/r. Output Kk is a copy of f[Kk] (checked by ``check_alignment``)
and output Kk+j is minterpolate's prediction of the dropped frame f[Kk+j] (t = j/K).

minterpolate only accepts planar YUV: decoded frames are fed in their native
format (yuv420p for H.264), so the even outputs equal the decoder's own frames
and predictions are converted to RGB exactly as FrameReader converts the truth
(``vfi_cli.video.SWS_FLAGS``: accurate rounding, full chroma interpolation); RGB sources (FFV1
bgr0) go through yuv444p and lose a level or two.

Run: python benchmarks/baselines.py CLIP... [--json out.json] [--max-pairs N] [--factor K]
Prints a table of blend, repeat and minterpolate, each through ``evaluate_with``.

Recorded (2026-11-24, 2-core CPU shared with training, FFmpeg 8 libs of PyAV 18.1,
eval clips of shared/data; 243 triplets: 5 in bikes straddle real cuts and are skipped;
PSNR dB / SSIM; minterpolate's frames/s includes decoding its own copy of the clip):
| method       | bikes        | carphone     | bigbuckbunny | pooled       | frames/s |
|--------------|--------------|--------------|--------------|--------------|----------|
| repeat       | 25.48 / .8905| 30.66 / .9286| 32.16 / .9387| 28.53 / .9126| -        |
| blend        | 29.16 / .9212| 33.36 / .9556| 34.79 / .9678| 31.69 / .9420| -        |
| minterpolate | 31.77 / .9471| 34.02 / .9659| 38.21 / .9817| 34.04 / .9609| 12.5     |
(DESIGN.md's earlier 248-triplet numbers kept the cut triplets; converting the
predictions with swscale's default flags instead of FrameReader's cost 0.4-1.6 dB, 0.8 pooled.)
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from vfi_cli.evaluation import protocol as ev  # noqa: E402

from vfi_cli.evaluation import runner  # noqa: E402
from vfi_cli.evaluation import report  # noqa: E402
from vfi_cli.media.reader import SWS_FLAGS  # noqa: E402  the RGB conversion FrameReader uses

MINTERPOLATE = "mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"


def _minterpolate_outputs(
    path: Path | str, options: str = MINTERPOLATE, factor: int = 2
) -> Iterator[tuple[int, av.VideoFrame, av.VideoFrame | None]]:
    """(output index n, output frame, the kept input f[n] or None when n % K) of minterpolate
    fed with every K-th frame (K = factor). Frame rate metadata only sets the time scale: inputs
    are restamped by index and the output rate is exactly K times the input rate."""
    with av.open(str(path)) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        rate = Fraction(vs.average_rate or vs.guessed_rate or 25)
        tb = factor / rate  # kept frames at 1/K of the rate
        graph = src = sink = None
        recent: dict[int, av.VideoFrame] = {}  # k -> f[Kk], the last few (the filter looks ahead ~2)

        def drain() -> Iterator[tuple[int, av.VideoFrame, av.VideoFrame | None]]:
            while True:
                try:
                    out = sink.pull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    return
                n = round(Fraction(out.pts) * out.time_base * rate)
                yield n, out, None if n % factor else recent.get(n // factor)

        for i, frame in enumerate(container.decode(vs)):
            if i % factor:
                continue
            if graph is None:
                graph = av.filter.Graph()
                src = graph.add_buffer(
                    width=frame.width, height=frame.height, format=frame.format, time_base=tb
                )
                mi = graph.add("minterpolate", f"fps={rate.numerator}/{rate.denominator}:{options}")
                sink = graph.add("buffersink")
                src.link_to(mi)
                mi.link_to(sink)
                graph.configure()
            k = i // factor
            frame.pts, frame.time_base = k, tb
            recent[k] = frame
            recent.pop(k - 4, None)
            src.push(frame)
            yield from drain()
        if graph is None:
            return
        # minterpolate looks one input ahead and has no flush: repeat the last kept frame
        # one slot later so the predictions before it are emitted, then stop.
        # (the filter holds its own reference to the frame pushed before; only pts changes)
        last_k = max(recent)
        recent[last_k].pts = last_k + 1
        src.push(recent[last_k])
        src.push(None)
        for n, out, inp in drain():
            if n <= factor * last_k:
                yield n, out, inp


def minterpolate_middles(
    path: Path | str, options: str = MINTERPOLATE, factor: int = 2
) -> Iterator[tuple[int, np.ndarray]]:
    """(index n, minterpolate's prediction of f[n] as [H, W, 3] uint8 RGB) for every dropped frame
    (n % K != 0) that has two kept neighbours, in order."""
    for n, out, _ in _minterpolate_outputs(path, options, factor):
        if n % factor:
            yield n, out.to_ndarray(format="rgb24", interpolation=SWS_FLAGS)


def check_alignment(path: Path | str, factor: int = 2) -> int:
    """Assert that every kept output equals the kept input it must copy; returns outputs seen."""
    seen = 0
    for n, out, inp in _minterpolate_outputs(path, factor=factor):
        seen += 1
        if n % factor == 0:
            if inp is None:
                raise AssertionError(f"{path}: minterpolate output {n} came too late to check")
            want = inp.to_ndarray(format="rgb24", interpolation=SWS_FLAGS)
            got = out.to_ndarray(format="rgb24", interpolation=SWS_FLAGS)
            diff = int(np.abs(got.astype(np.int16) - want).max())
            tolerance = 0 if inp.format.name.startswith("yuv") else 2  # RGB goes via yuv444p
            if diff > tolerance:
                raise AssertionError(f"{path}: minterpolate output {n} differs from f[{n}] by {diff}")
    return seen


def minterpolate_predictor(factor: int = 2):
    """``predict(source, triplets)`` for ``evaluate_with`` at drop factor K: streams minterpolate
    per clip and matches its predictions to the triplets by frame index (skipped ones are passed over)."""
    state: dict = {"path": None, "gen": None}

    def predict(source: ev.Source, batch: list[ev.Triplet]) -> np.ndarray:
        if source.kind != "video":
            raise ValueError("minterpolate needs videos (it streams the clip), not Vimeo triplets")
        if state["path"] != source.path:
            state["path"], state["gen"] = source.path, minterpolate_middles(source.path, factor=factor)
        out = []
        for t in batch:
            for n, mid in state["gen"]:
                if n == t.index:
                    out.append(mid)
                    break
            else:
                raise RuntimeError(f"{source.path}: minterpolate gave no frame {t.index}")
        return np.stack(out)

    return predict


def main(argv: list[str] | None = None) -> None:
    from rich.console import Console

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--max-pairs", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--methods", default="blend,repeat,minterpolate")
    ap.add_argument("--factor", type=int, default=2, help="keep every K-th frame, predict the K-1 between")
    args = ap.parse_args(argv)
    console = Console()
    doc = {}
    for name in args.methods.split(","):
        if name == "minterpolate":
            predict = minterpolate_predictor(args.factor)
        else:
            predict = runner.pair_predictor(ev.BASELINES[name])

        res = runner.evaluate_with(args.paths, predict, max_pairs=args.max_pairs, factor=args.factor)
        console.print(report.render_table(res, title=name))
        doc[name] = report.result_to_json(res, {"method": name, "settings": {"max_pairs": args.max_pairs,
                                                                             "factor": args.factor}})
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1, allow_nan=False))


if __name__ == "__main__":
    main()
