"""benchmarks/chain_probe.py: per-step scores of the sampler chain, the last step equal to `vfi eval`'s."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import benchmark_scripts
from clips import make_clip
from vfi_cli.evaluation import protocol
from vfi_cli.evaluation.metrics import psnr_batch
from vfi_cli.interpolator import Interpolator


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_last_step_is_the_sample_the_product_decodes(tmp_path, tiny_weights, temperature):
    """The probe's last step scores the frames `Interpolator.middles` makes (same keys, same chain),
    every step gets a score, and the first step (pure noise in) differs from the last."""
    probe = benchmark_scripts.load("chain_probe")
    clip = make_clip(tmp_path / "a.mkv", n_frames=13, width=48, height=32)
    ip = Interpolator.load(tiny_weights, device="cpu", temperature=temperature)
    r = probe.probe_clip(ip, clip, ip.steps, max_pairs=6)
    assert r["triplets"] == 6 and len(r["mse"]) == len(r["psnr"]) == ip.steps == 4
    assert all(np.isfinite(r["mse"])) and all(m >= 0 for m in r["mse"])

    trips = list(itertools.islice(protocol.video_triplets(clip, protocol.Scores()), 6))
    method = ip.sequential_pairs()
    ref = []
    for i in range(0, 6, 4):
        b = trips[i:i + 4]
        out = method(np.stack([x.x0 for x in b]), np.stack([x.x2 for x in b]))
        ref += psnr_batch(out, np.stack([x.truth for x in b])).tolist()
    assert r["psnr"][-1] == pytest.approx(float(np.mean(ref)), abs=1e-6)
    assert r["mse"][0] != r["mse"][-1]
