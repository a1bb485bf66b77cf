"""Where the decoder's detail goes, per validation clip: the sharpness (rms Laplacian, 8-bit levels)
of the two warped neighbours, their masked blend, the output and the truth; how far apart the two
warps are (rms |w0 - w2|) against each one's and the blend's error to the truth; and the mask's mean
|m - 0.5|. It reads the inputs of the decoder's residual head (warped x0, warped x2, mask), so it runs
any release whose decoder has that head (v3, v4):

  python benchmarks/warp_probe.py [--code CHECKOUT] [--weights DIR] [--max-pairs 20]

(benchmarks/RESULTS.md, "Aligning the two warps"; v3 with --code <checkout of a04a2dc>.) Triplets of
frames large enough to be decoded in tiles are skipped (the hook sees one tile) and not counted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
VALIDATION = ("gem_anim1.mov", "visp_cube.mpeg", "psychopy_testMovie.mp4")  # ../shared/data/README.md
LAPLACE = torch.tensor([[[[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]]])
COLUMNS = ("lap w0", "lap w2", "lap blend", "lap out", "lap truth",
           "rms w0-w2", "rms w0-t", "rms w2-t", "rms blend-t", "rms out-t", "|m-.5|")


def sharpness(x: torch.Tensor) -> float:
    """rms Laplacian of the grey image of x [1, 3, H, W] in [-1, 1], in 8-bit levels."""
    return F.conv2d(x.mean(1, keepdim=True) * 127.5, LAPLACE).square().mean().sqrt().item()


def rms(a: torch.Tensor, b: torch.Tensor) -> float:
    """rms difference of two [1, 3, H, W] frames in [-1, 1], in 8-bit levels."""
    return ((a - b).square().mean().sqrt() * 127.5).item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--code", type=Path, default=None, help="a checkout whose vfi_cli runs the model (default: this one)")
    ap.add_argument("--weights", type=Path, default=None, help="model directory (default: the code's default weights)")
    ap.add_argument("--clips", type=Path, default=CLIPS)
    ap.add_argument("--max-pairs", type=int, default=20)
    args = ap.parse_args()
    sys.path.insert(0, str((args.code or Path(__file__).resolve().parents[1]).resolve()))  # before vfi_cli
    from vfi_cli.evaluation import protocol
    from vfi_cli.frames import to_tensor  # uint8 [H, W, 3] -> [1, 3, H, W] in [-1, 1] (v3's too)
    from vfi_cli.interpolator import Interpolator

    interp = Interpolator.load(args.weights, device="cpu")
    head_input = {}
    interp.vqgan.decoder.head.register_forward_pre_hook(lambda module, inp: head_input.update(x=inp[0].detach()))
    run = interp.sequential_pairs()
    for name in VALIDATION:
        rows = []
        for k, t in enumerate(protocol.video_triplets(args.clips / name, protocol.Scores())):
            if k == args.max_pairs:
                break
            out = to_tensor(np.asarray(run(t.x0[None], t.x2[None]))[0])
            x = head_input["x"]
            w0, w2, m = x[:, :3], x[:, 3:6], x[:, 6:7]
            truth = to_tensor(t.truth)
            if truth.shape[-2:] != w0.shape[-2:]:
                continue  # decoded in tiles
            blend = m * w0 + (1 - m) * w2
            rows.append([sharpness(w0), sharpness(w2), sharpness(blend), sharpness(out), sharpness(truth),
                         rms(w0, w2), rms(w0, truth), rms(w2, truth), rms(blend, truth), rms(out, truth),
                         (m - 0.5).abs().mean().item()])
        means = np.array(rows).mean(0)
        print(f"{name} ({len(rows)} triplets): " + ", ".join(f"{c} {v:.3f}" for c, v in zip(COLUMNS, means)))


if __name__ == "__main__":
    main()
