"""`vfi eval`'s protocol: which triplets are scored, the baselines, and the score records (runner.py runs it).

Sources of (x0, truth, x2, t) triplets:
  * a video file, or a folder of videos (non-recursive): the drop-frames protocol at
    factor K (default 2: drop the odd frames) -- keep every K-th frame and predict each of
    the K-1 dropped frames between kept f[Kk] and f[Kk+K] at t = 1/K, ..., (K-1)/K,
    streamed from the decoder; groups across a scene cut, or with a dropped frame that
    duplicates a neighbour, are skipped and counted (they are not interpolation problems);
  * a Vimeo-90k triplet folder: ``tri_testlist.txt`` + ``sequences/<a>/<b>/im{1,2,3}.png``,
    every listed triplet evaluated at t = 1/2 (a curated set: nothing skipped, so numbers
    stay comparable with the literature).

A method is any callable ``method(x0 [B,H,W,3] uint8, x2 [B,H,W,3] uint8[, t=[B] float]) ->
[B,H,W,3] uint8``, t given when some time is not 1/2 (the model's ``Interpolator.sequential_pairs``,
or the baselines ``blend`` / ``repeat`` below), so every method runs the same code path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from vfi_cli import frames
from vfi_cli.errors import DataError, InputError
from vfi_cli.media import VIDEO_EXTENSIONS

Method = Callable[[np.ndarray, np.ndarray], np.ndarray]

VIMEO_LIST = "tri_testlist.txt"


def blend(a: np.ndarray, b: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    """Baseline: (1 - t) a + t b rounded half up (t [B], default 1/2). [B,H,W,3] uint8 x2 -> same."""
    if t is None or np.all(np.asarray(t) == 0.5):
        return ((a.astype(np.uint16) + b.astype(np.uint16) + 1) // 2).astype(np.uint8)
    w = np.asarray(t, dtype=np.float64).reshape(-1, 1, 1, 1)  # [B, 1, 1, 1]
    return np.floor((1 - w) * a + w * b + 0.5).astype(np.uint8)


def repeat(a: np.ndarray, b: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    """Baseline: repeat the first neighbour (what a plain frame-rate conversion does)."""
    return a.copy()


BASELINES: dict[str, Method] = {"blend": blend, "repeat": repeat}


@dataclass
class Triplet:
    """One evaluation sample; frames are [H, W, 3] uint8 RGB."""

    index: int  # video: index of the dropped frame f[Kk+j]; Vimeo: line number in the list
    x0: np.ndarray
    truth: np.ndarray
    x2: np.ndarray
    t: Fraction = Fraction(1, 2)  # time of truth between x0 (0) and x2 (1): j / K


@dataclass
class Source:
    """One clip (a video file or a whole Vimeo-90k folder)."""

    name: str
    path: Path
    kind: str  # "video" | "vimeo"
    info: dict[str, Any] | None = None  # JSON-able probe of the input (video) or list facts (vimeo)


@dataclass
class Scores:
    """Metrics of one clip or of the pooled set (NaN when nothing was evaluated)."""

    psnr: float = float("nan")  # dB, mean of per-frame PSNR
    ssim: float = float("nan")  # mean of per-frame SSIM
    colour_bias: list[float] = field(default_factory=lambda: [float("nan")] * 3)  # R, G, B levels
    fps: float = float("nan")  # interpolated frames per second of the method alone
    evaluated: int = 0
    skipped_cuts: int = 0
    skipped_duplicates: int = 0
    method_seconds: float = 0.0


@dataclass
class ClipResult:
    """Scores of one source plus its per-frame values (index, psnr, ssim)."""

    source: Source
    scores: Scores
    frame_index: list[int] = field(default_factory=list)
    frame_psnr: list[float] = field(default_factory=list)
    frame_ssim: list[float] = field(default_factory=list)
    frame_bias: list[list[float]] = field(default_factory=list)  # [n, 3]
    frame_t: list[Fraction] = field(default_factory=list)

    def at(self, t: Fraction) -> "ClipResult":
        """The frames at time t only (scores filled; the method's seconds shared by frame count)."""
        keep = [i for i, v in enumerate(self.frame_t) if v == t]
        c = ClipResult(self.source, Scores(evaluated=len(keep)), *(
            [getattr(self, f)[i] for i in keep] for f in ("frame_index", "frame_psnr", "frame_ssim", "frame_bias",
                                                          "frame_t")))
        c.scores.method_seconds = self.scores.method_seconds * len(keep) / max(1, len(self.frame_t))
        finish(c.scores, [c])
        return c


@dataclass
class EvalResult:
    """Everything `vfi eval` reports."""

    clips: list[ClipResult]
    pooled: Scores
    fid: float | None = None  # between predicted and true middle frames, pooled
    fid_images: int = 0  # images per side in the FID (it is biased for small sets)

    def by_t(self) -> dict[Fraction, tuple[Scores, list[ClipResult]]]:
        """t -> (pooled scores, per-clip results) of the frames at that time (just 1/2 at factor 2)."""
        out = {}
        for t in sorted({t for c in self.clips for t in c.frame_t}):
            clips = [c.at(t) for c in self.clips]
            out[t] = (pool(clips), clips)
        for pooled, _ in out.values():  # skips count whole groups: they belong to no single t
            pooled.skipped_cuts = pooled.skipped_duplicates = 0
        return out


# ----------------------------------------------------------------------------- sources


def discover(paths: Sequence[Path | str]) -> list[Source]:
    """Expand the user's PATHs into sources (files, folders of videos, Vimeo folders)."""
    from vfi_cli.media.probe import probe  # lazy: listing a folder needs no av

    sources: list[Source] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_dir():
            if (p / VIMEO_LIST).is_file():
                sources.append(_vimeo_source(p))
                continue
            if (p / "sequences").is_dir():
                raise DataError(f"{p}: looks like a Vimeo-90k triplet folder but has no {VIMEO_LIST}")
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)
            if not files:
                exts = ", ".join(sorted(VIDEO_EXTENSIONS))
                raise DataError(f"{p}: no video files ({exts}) and no {VIMEO_LIST}")
        else:
            files = [p]
        for f in files:
            sources.append(Source(name=f.stem, path=f, kind="video", info=jsonable(probe(f))))
    names = [s.name for s in sources]
    for s in sources:  # disambiguate equal stems (a/x.mp4, b/x.mp4, x.mkv)
        if names.count(s.name) > 1:
            s.name = str(s.path)
    return sources


def _vimeo_lines(root: Path) -> list[str]:
    text = (root / VIMEO_LIST).read_text(encoding="utf-8", errors="replace")
    return [ln.strip().strip("/") for ln in text.splitlines() if ln.strip()]


def _vimeo_source(root: Path) -> Source:
    lines = _vimeo_lines(root)
    if not lines:
        raise DataError(f"{root / VIMEO_LIST} lists no triplets")
    info = {"list": VIMEO_LIST, "triplets": len(lines)}
    return Source(name=root.name or str(root), path=root, kind="vimeo", info=info)


def _read_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)  # [H, W, 3]
    except FileNotFoundError:
        raise DataError(f"{path}: listed in {VIMEO_LIST} but missing") from None
    except OSError as e:
        raise InputError(f"{path}: unreadable image ({e})") from None


def vimeo_triplets(root: Path) -> Iterator[Triplet]:
    """Triplets of a Vimeo-90k folder in list order: im1, im2 (truth), im3."""
    if not (root / VIMEO_LIST).is_file():
        raise DataError(f"{root}: no {VIMEO_LIST} (expected a Vimeo-90k triplet folder)")
    for i, rel in enumerate(_vimeo_lines(root)):
        d = root / "sequences" / rel
        x0, x1, x2 = (_read_png(d / f"im{k}.png") for k in (1, 2, 3))
        if not (x0.shape == x1.shape == x2.shape):
            raise DataError(f"{d}: im1/im2/im3 differ in size")
        yield Triplet(i, x0, x1, x2)


def video_triplets(path: Path, counts: Scores, factor: int = 2) -> Iterator[Triplet]:
    """Drop-frames triplets (f[Kk], f[Kk+j], f[Kk+K], t = j/K) for j = 1..K-1, streamed from the
    decoder (K = factor); groups f[Kk..Kk+K] across a scene cut or with a dropped frame that
    duplicates a neighbour are counted into ``counts`` (once per group)."""
    from vfi_cli.media.reader import FrameReader  # raises InputError for unreadable files

    if factor < 2:
        raise ValueError(f"factor must be >= 2, got {factor}")
    with FrameReader(path) as reader:
        it = (f.rgb for f in reader)  # [H, W, 3] uint8
        prev, k = next(it, None), 0
        while prev is not None:
            group = [prev] + [f for f in (next(it, None) for _ in range(factor)) if f is not None]
            if len(group) < factor + 1:
                return
            if any(frames.is_scene_cut(a, b) for a, b in zip(group, group[1:])):
                counts.skipped_cuts += 1
            elif any(frames.is_duplicate(group[j], group[j + d]) for j in range(1, factor) for d in (-1, 1)):
                counts.skipped_duplicates += 1
            else:
                for j in range(1, factor):
                    yield Triplet(factor * k + j, group[0], group[j], group[-1], Fraction(j, factor))
            prev, k = group[-1], k + 1


def finish(s: Scores, clips: list[ClipResult]) -> Scores:
    """Fill ``s`` with means over all frames of ``clips`` (pooled: not a mean of clip means)."""
    if s.evaluated:
        s.psnr = float(np.mean([v for c in clips for v in c.frame_psnr]))
        s.ssim = float(np.mean([v for c in clips for v in c.frame_ssim]))
        s.colour_bias = np.mean([v for c in clips for v in c.frame_bias], axis=0).tolist()
        s.fps = s.evaluated / s.method_seconds if s.method_seconds > 0 else float("inf")
    return s


def pool(clips: list[ClipResult]) -> Scores:
    """Pooled counts and scores of all clips."""
    p = Scores()
    for c in clips:
        p.evaluated += c.scores.evaluated
        p.skipped_cuts += c.scores.skipped_cuts
        p.skipped_duplicates += c.scores.skipped_duplicates
        p.method_seconds += c.scores.method_seconds
    return finish(p, clips)


def jsonable(obj: Any) -> Any:
    """Dataclasses, Paths, Fractions, numpy values -> plain JSON types (NaN/inf -> None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, Fraction):
        return {"num": obj.numerator, "den": obj.denominator, "value": float(obj)}
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return str(obj)
