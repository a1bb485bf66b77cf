"""Runs a method over the triplets of the protocol and scores it: `vfi eval`'s engine.

In: PATHs (videos, folders of videos, Vimeo-90k triplet folders; see ``protocol``) and a method
(x0s, x2s[, t=times] -> new frames, uint8 [B, H, W, 3]) or a per-clip predictor. Out: an
``EvalResult`` with per-frame PSNR / SSIM / colour bias, per-clip and pooled means, the method's
frames per second and optionally FID (needs ``vfi[fid]``); PNG example strips on request.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from vfi_cli.errors import DataError
from vfi_cli.evaluation import metrics
from vfi_cli.evaluation.examples import safe_name, save_strip
from vfi_cli.evaluation.protocol import (ClipResult, EvalResult, Method, Scores, Source, Triplet, discover, finish,
                                         pool, video_triplets, vimeo_triplets)


def pair_predictor(method: Method, with_truth: bool = False) -> Callable[[Source, list[Triplet]], np.ndarray]:
    """Adapt a pair method (x0s, x2s[, t=times] -> new frames) to ``evaluate_with``'s predictor
    signature; with_truth: the method also gets the true frames (an oracle, `vfi eval --latent oracle`).
    Times are passed only when some t is not 1/2 (factor > 2), so a method (x0s, x2s) still works at K = 2."""

    def predict(src: Source, batch: list[Triplet]) -> np.ndarray:
        x0, x2 = np.stack([t.x0 for t in batch]), np.stack([t.x2 for t in batch])
        args = (np.stack([tr.truth for tr in batch]),) if with_truth else ()
        if all(tr.t == Fraction(1, 2) for tr in batch):
            return method(x0, x2, *args)  # [B, H, W, 3]
        return method(x0, x2, *args, t=np.array([float(tr.t) for tr in batch]))  # t: [B]

    return predict


def evaluate(
    paths: Sequence[Path | str],
    method: Method,
    *,
    batch_size: int = 4,
    max_pairs: int | None = None,
    fid: bool = False,
    save_examples: Path | None = None,
    n_examples: int = 4,
    fid_device: str = "cpu",
    progress: Callable[[str, int], None] | None = None,
    with_truth: bool = False,
    factor: int = 2,
) -> EvalResult:
    """Run ``method`` on every usable triplet of ``paths``; per-clip and pooled scores.

    ``max_pairs`` caps the evaluated triplets per clip. ``fid`` adds the FID between
    all predicted and all true middle frames (needs ``vfi[fid]``). ``save_examples``
    writes PNG strips x0 | prediction | truth | x2 | error x4 of the first
    ``n_examples`` triplets of each clip. ``progress(clip_name, evaluated)`` is called after
    every batch (for a progress bar). Raises DataError if no triplet is usable.
    """
    return evaluate_with(
        paths, pair_predictor(method, with_truth), batch_size=batch_size, max_pairs=max_pairs, fid=fid,
        save_examples=save_examples, n_examples=n_examples, fid_device=fid_device, progress=progress,
        factor=factor,
    )


def evaluate_with(
    paths: Sequence[Path | str],
    predict: Callable[[Source, list[Triplet]], np.ndarray],
    *,
    batch_size: int = 4,
    max_pairs: int | None = None,
    fid: bool = False,
    save_examples: Path | None = None,
    n_examples: int = 4,
    fid_device: str = "cpu",
    progress: Callable[[str, int], None] | None = None,
    factor: int = 2,
) -> EvalResult:
    """``evaluate`` for predictors that need the clip and frame indices (e.g. a streaming
    filter such as ffmpeg's minterpolate): ``predict(source, triplets) -> [B, H, W, 3] uint8``,
    called with the triplets of one clip in order; its time counts as the method's."""
    if batch_size < 1 or (max_pairs is not None and max_pairs < 1):
        raise ValueError("batch_size and max_pairs must be >= 1")
    sources = discover(paths)  # path errors first
    if factor != 2 and any(s.kind == "vimeo" for s in sources):
        raise DataError("Vimeo-90k triplets only have middle frames: use --factor 2 with them")
    inception = None
    if fid:
        from vfi_cli.evaluation import fid as fidlib

        inception = fidlib.load_inception(fid_device)  # fails before any work if the extra is missing
    if save_examples is not None:
        save_examples.mkdir(parents=True, exist_ok=True)
    feats: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])  # predicted, true: [n, 2048] chunks
    clips: list[ClipResult] = []
    for src in sources:
        clip = ClipResult(src, Scores())
        triplets = vimeo_triplets(src.path) if src.kind == "vimeo" else video_triplets(src.path, clip.scores, factor)

        def run(batch: list[Triplet], clip: ClipResult = clip) -> None:
            _run_batch(batch, predict, clip, save_examples, n_examples, inception, feats)
            if progress is not None:
                progress(clip.source.name, clip.scores.evaluated)

        batch: list[Triplet] = []
        try:
            for t in triplets:
                if batch and batch[0].x0.shape != t.x0.shape:  # a batch holds one frame size
                    run(batch)
                    batch = []
                batch.append(t)
                full = max_pairs is not None and clip.scores.evaluated + len(batch) >= max_pairs
                if len(batch) == batch_size or full:
                    run(batch)
                    batch = []
                if full:
                    break
            if batch:
                run(batch)
        finally:
            triplets.close()  # releases the decoder when max_pairs stopped early or on errors
        clips.append(clip)
        finish(clip.scores, [clip])
    result = EvalResult(clips=clips, pooled=pool(clips))
    if result.pooled.evaluated == 0:
        p = result.pooled
        raise DataError(
            f"no usable triplets in {', '.join(str(x) for x in paths)} (need 3+ frames; skipped "
            f"{p.skipped_cuts} at scene cuts, {p.skipped_duplicates} with duplicated frames)"
        )
    if fid:
        fp, ft = np.concatenate(feats[0]), np.concatenate(feats[1])
        if len(fp) < 2:
            raise DataError("FID needs at least 2 evaluated triplets")
        result.fid, result.fid_images = fidlib.fid(fp, ft), len(fp)
    return result


def _run_batch(
    batch: list[Triplet],
    predict: Callable[[Source, list[Triplet]], np.ndarray],
    clip: ClipResult,
    save_examples: Path | None,
    n_examples: int,
    inception: Any,
    feats: tuple[list[np.ndarray], list[np.ndarray]],
) -> None:
    """Interpolate one batch (timed), score it, collect FID features and example strips."""
    x1 = np.stack([t.truth for t in batch])  # [B, H, W, 3]
    start = time.perf_counter()
    pred = np.asarray(predict(clip.source, batch))  # [B, H, W, 3] uint8
    clip.scores.method_seconds += time.perf_counter() - start
    if pred.shape != x1.shape or pred.dtype != np.uint8:
        raise ValueError(f"method returned {pred.dtype} {pred.shape}, expected uint8 {x1.shape}")
    clip.frame_index += [t.index for t in batch]
    clip.frame_psnr += metrics.psnr_batch(pred, x1).tolist()
    clip.frame_ssim += metrics.ssim_batch(pred, x1).tolist()
    clip.frame_bias += metrics.colour_bias_batch(pred, x1).tolist()
    clip.frame_t += [t.t for t in batch]
    if inception is not None:
        from vfi_cli.evaluation import fid as fidlib

        feats[0].append(fidlib.inception_features(pred, inception))
        feats[1].append(fidlib.inception_features(x1, inception))
    if save_examples is not None:
        for i, t in enumerate(batch):
            if clip.scores.evaluated + i < n_examples:
                save_strip(save_examples / f"{safe_name(clip.source.name)}_{t.index:06d}.png", t, pred[i])
    clip.scores.evaluated += len(batch)
