"""Near-static footage: does the model lose to plain blending where almost nothing moves?

Scores the model and frame blending (drop-odd-frames, the same code as `vfi eval`) on
- three synthetic 384x256 clips written here with H.264 (CRF 18, like a real upload):
  `slide` (a still slide with sensor noise), `screen` (a still screen with a 16 px cursor moving
  3 px/frame), `locked` (a locked-off shot: still textured background, noise, and one small
  region drifting 1 px/frame);
- the validation split's nearly static talking head (psychopy_testMovie.mp4), when present.

Run from the repository root:
  python benchmarks/static_probe.py [--weights DIR] [--clips DIR]
Writes benchmarks/results/static_probe.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vfi_cli.evaluation import protocol as ev  # noqa: E402

from vfi_cli.evaluation import runner  # noqa: E402
from vfi_cli.evaluation import report  # noqa: E402
from vfi_cli.interpolator import Interpolator  # noqa: E402

H, W, N = 256, 384, 25


def _texture(rng: np.random.Generator) -> np.ndarray:
    """A slide-like still: smooth gradient, flat boxes with hard edges, thin 'text' lines."""
    y, x = np.mgrid[0:H, 0:W]
    img = np.stack([60 + 120 * x / W, 80 + 100 * y / H, 150 - 60 * x / W], -1)
    for _ in range(12):
        y0, x0 = rng.integers(0, H - 40), rng.integers(0, W - 80)
        img[y0:y0 + rng.integers(8, 40), x0:x0 + rng.integers(20, 80)] = rng.integers(0, 255, 3)
    for row in range(20, H - 20, 14):  # lines of "text": 2 px strokes
        xs = rng.integers(10, W // 2)
        img[row:row + 2, xs:xs + rng.integers(40, W // 2)] = 20
    return img


def _clip(kind: str, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = _texture(rng)
    frames = []
    for i in range(N):
        f = base.copy()
        if kind == "screen":
            y, x = 100, 40 + 3 * i
            f[y:y + 16, x:x + 16] = 255
        if kind == "locked":
            patch = base[40:104, 40:104].copy()
            f[140:204, 200 + i:264 + i] = patch  # a region drifting 1 px/frame
        if kind in ("slide", "locked"):
            f = f + rng.normal(0, 1.5, f.shape)  # sensor noise
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


def write(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"crf": "18"})
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [write(Path(tmp) / f"{k}.mp4", _clip(k)) for k in ("slide", "screen", "locked")]
        real = args.clips / "psychopy_testMovie.mp4"
        if real.exists():
            paths.append(real)
        interp = Interpolator.load(args.weights, device="cpu")
        results = {"vfi": runner.evaluate(paths, interp.sequential_pairs()),
                   "blend": runner.evaluate(paths, ev.BASELINES["blend"])}
    names = [c.source.path.name for c in results["vfi"].clips]
    lines = ["| method | " + " | ".join(names) + " | pooled |", "|" + "---|" * (len(names) + 2)]
    for m, res in results.items():
        cells = [f"{c.scores.psnr:.2f} / {c.scores.ssim:.4f}" for c in res.clips]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {res.pooled.psnr:.2f} / {res.pooled.ssim:.4f} |")
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {m: report.result_to_json(r, {"method": m, "weights": str(args.weights or "default"),
                                        "weights_sha256": interp.sha256}) for m, r in results.items()}
    (args.out / "static_probe.json").write_text(json.dumps(doc, indent=1, allow_nan=False))
    (args.out / "static_probe.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
