"""Triplet datasets for training: Vimeo-90k layout, folders of videos (synthetic motion: synthetic.py).

Every dataset yields `torch.Tensor [3, 3, S, S]` float32 in [-1, 1], indexed
(frame, channel, y, x) = (x0, x1, x2): x1 is the frame halfway between x0 and x2.
Augmentation (random crop with one window for the three frames, horizontal and
vertical flips, temporal reversal, 90-degree rotation of the square crop) draws from
a numpy Generator seeded by (seed, epoch, index), so a run is reproducible and
`set_epoch(e)` changes the draws from one epoch to the next.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset

from vfi_cli.training.augment import Seeded, augment, center_crop
from vfi_cli.training.synthetic import DEFAULT_SYNTHETIC_N, SyntheticTriplets
from vfi_cli.errors import DataError
from vfi_cli.media import VIDEO_EXTENSIONS
from vfi_cli.frames import duplicate_pairs, scene_cuts, thumbnails, to_tensor

SYNTHETIC = "synthetic"  # build_dataset literal: "synthetic" or "synthetic:N"


def _crop_error(crop: int, w: int, h: int, where: str, max_side: int | None = None) -> DataError:
    after = f" (after --max-side {max_side})" if max_side else ""
    return DataError(f"crop {crop} larger than {w}x{h} in {where}{after}; use --crop <= {min(w, h)}")


# --------------------------------------------------------------------------- Vimeo-90k


class VimeoTriplets(Seeded):
    """Vimeo-90k triplets: root/tri_{train,test}list.txt + root/sequences/<a>/<b>/im{1,2,3}.png.

    crop=None returns the full 448x256 frames. Test split: centre crop, no augmentation
    (unless augment=True).
    """

    def __init__(self, root: Path | str, split: str = "train", crop: int | None = 256, *, seed: int = 0,
                 augment: bool | None = None):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.root, self.split, self.crop, self.seed = Path(root), split, crop, seed
        self.augment = split == "train" if augment is None else augment
        listfile = self.root / f"tri_{split}list.txt"
        if not listfile.is_file():
            raise DataError(f"Vimeo-90k list file {listfile} not found")
        self.items = [ln.strip() for ln in listfile.read_text().splitlines() if ln.strip()]
        if not self.items:
            raise DataError(f"{listfile} lists no sequences")
        if not (self.root / "sequences").is_dir():
            raise DataError(f"{self.root / 'sequences'} not found (expected the Vimeo-90k layout)")

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> np.ndarray:
        """uint8 [3, H, W, 3]: im1, im2, im3 of sequence `index`."""
        folder = self.root / "sequences" / self.items[index]
        frames = []
        for name in ("im1.png", "im2.png", "im3.png"):
            path = folder / name
            try:
                with Image.open(path) as im:
                    frames.append(np.asarray(im.convert("RGB")))
            except (OSError, ValueError) as e:
                raise DataError(f"{path}: cannot read ({e})") from e
        if len({f.shape for f in frames}) != 1:
            raise DataError(f"{folder}: im1/im2/im3 differ in size")
        h, w = frames[0].shape[:2]
        if self.crop is not None and self.crop > min(h, w):
            raise _crop_error(self.crop, w, h, str(folder))
        return np.stack(frames)

    def __getitem__(self, index: int) -> torch.Tensor:
        trip = self.load(index)
        out = augment(trip, self.crop, self.rng(index), pan=self.pan) if self.augment else center_crop(trip, self.crop)
        return to_tensor(out)  # [3, 3, S, S]

    def describe(self) -> str:
        return f"vimeo {self.root} ({self.split}): {len(self)} triplets"


# --------------------------------------------------------------------------- videos


def list_videos(path: Path | str) -> list[Path]:
    """A video file -> [it]; a folder -> its videos (recursive, sorted). DataError if none / missing."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: not found")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not files:
        raise DataError(f"{path}: no videos ({' '.join(sorted(VIDEO_EXTENSIONS))}) in this folder")
    return files


def _downscale(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """HxWx3 uint8 -> area-resized so max(H, W) <= max_side (aspect kept)."""
    h, w = rgb.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return rgb
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))  # PIL: (W, H)
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BOX))


def read_video(path: Path, crop: int | None, max_frames: int | None, max_side: int | None) -> np.ndarray:
    """Decode a video once -> uint8 [N, H, W, 3] (N >= 3), checking the crop on the first frame."""
    from vfi_cli.media.reader import FrameReader  # lazy: av only when a video is read

    frames: list[np.ndarray] = []
    with FrameReader(path, max_frames=max_frames) as reader:
        for fr in reader:
            rgb = _downscale(fr.rgb, max_side)
            if not frames and crop is not None and crop > min(rgb.shape[:2]):
                raise _crop_error(crop, rgb.shape[1], rgb.shape[0], str(path), max_side)
            if frames and rgb.shape != frames[0].shape:
                raise DataError(f"{path}: frame size changes mid-stream ({frames[0].shape[:2]} -> {rgb.shape[:2]})")
            frames.append(rgb)
    if len(frames) < 3:
        raise DataError(f"{path}: {len(frames)} frame(s); a training video needs at least 3")
    return np.stack(frames)


def _thumbs(frames: np.ndarray, chunk: int = 32) -> np.ndarray:
    """thumbnails() in chunks (a float copy of a whole video would not fit in memory)."""
    return np.concatenate([thumbnails(frames[i : i + chunk]) for i in range(0, len(frames), chunk)])


class VideoTriplets(Seeded):
    """Triplets (i, i+s, i+2s) from videos decoded once into memory (uint8); with ``spans``, also
    uneven ones (i, i+k, i+n) for n in spans and 0 < k < n, 2k != n, whose middle sits at t = k/n
    (items are then (frames, t): what teaches the model any frame time).

    Memory: N frames x H x W x 3 bytes per video (600 frames of 640x480: 550 MB);
    `max_side` downscales (area) on load. A triplet is skipped when a scene cut lies
    anywhere between its first and last frame (each consecutive pair checked with the
    is_scene_cut rule) or when any two of its frames are duplicates (a repeated middle
    frame makes the target trivial; x0 == x2 with a different x1 is a flash).
    """

    def __init__(self, paths: Sequence[Path | str], crop: int | None = 256, strides: Iterable[int] = (1, 2),
                 max_frames_per_video: int | None = 600, max_side: int | None = None, *, seed: int = 0,
                 augment: bool = True, name: str | None = None, spans: Iterable[int] = ()):
        self.crop, self.seed, self.augment = crop, seed, augment
        self.strides = tuple(int(s) for s in strides)
        self.spans = tuple(int(n) for n in spans)
        if self.spans and min(self.spans) < 2:
            raise DataError(f"spans must be integers >= 2, got {self.spans}")
        if not self.strides or min(self.strides) < 1:
            raise DataError(f"strides must be positive integers, got {self.strides}")
        self.max_side = max_side
        self.name = name or ", ".join(str(p) for p in paths)
        files = [f for p in paths for f in list_videos(p)]
        self.files: list[Path] = []
        self.videos: list[np.ndarray] = []  # each uint8 [N, H, W, 3]
        index: list[np.ndarray] = []  # rows (video, i, k, n): frames i, i+k, i+n
        self.skipped_cuts = self.skipped_duplicates = self.num_cuts = 0
        for f in files:
            frames = read_video(f, crop, max_frames_per_video, max_side)
            rows = self._index(len(self.videos), frames)
            self.files.append(f)
            self.videos.append(frames)
            index.append(rows)
        self.index = np.concatenate(index) if index else np.zeros((0, 4), dtype=np.int64)  # [M, 4]

    def _index(self, vid: int, frames: np.ndarray) -> np.ndarray:
        """Valid (vid, i, k, n) rows of one video; updates the skip counters."""
        n_frames = len(frames)
        th = _thumbs(frames)  # [N, h, w, 3]
        cuts = scene_cuts(frames, thumbs=th)  # [N-1]: cut between i and i+1
        self.num_cuts += int(cuts.sum())
        cum = np.concatenate([[0], np.cumsum(cuts)])  # cuts before frame i
        shapes = [(s, 2 * s) for s in self.strides]
        shapes += [(k, n) for n in self.spans for k in range(1, n) if 2 * k != n]
        dups = {}  # gap -> [N-gap]: frame i+gap repeats frame i

        def dup(gap: int) -> np.ndarray:
            if gap not in dups:
                dups[gap] = duplicate_pairs(th, gap)
            return dups[gap]

        rows = []
        for k, n in shapes:
            m = n_frames - n
            if m <= 0:
                continue
            i = np.arange(m)
            across = cum[i + n] - cum[i] > 0
            bad = dup(k)[i] | dup(n - k)[i + k] | dup(n)[i]
            self.skipped_cuts += int(across.sum())
            self.skipped_duplicates += int((bad & ~across).sum())
            keep = i[~across & ~bad]
            rows.append(np.stack([np.full_like(keep, vid), keep, np.full_like(keep, k), np.full_like(keep, n)], axis=1))
        return np.concatenate(rows) if rows else np.zeros((0, 4), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def triplet(self, index: int) -> np.ndarray:
        """uint8 [3, H, W, 3] frames (i, i+k, i+n) of item `index`, before augmentation."""
        vid, i, k, n = (int(v) for v in self.index[index])
        return self.videos[vid][[i, i + k, i + n]]

    def time(self, index: int) -> float:
        """t = k/n of item `index` before augmentation (0.5 for the even triplets)."""
        return float(self.index[index, 2] / self.index[index, 3])

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, float]:
        trip = self.triplet(index)
        if not self.spans:
            out = augment(trip, self.crop, self.rng(index), pan=self.pan) if self.augment else center_crop(trip, self.crop)
            return to_tensor(out)  # [3, 3, S, S]
        t = self.time(index)
        if not self.augment:
            return to_tensor(center_crop(trip, self.crop)), t
        rng = self.rng(index)
        out = augment(trip, self.crop, rng, pan=self.pan, reverse=False)
        if rng.random() < 0.5:  # temporal reversal: the middle moves to 1 - t
            out, t = np.ascontiguousarray(out[::-1]), 1.0 - t
        return to_tensor(out), t

    def describe(self) -> str:
        n_frames = sum(len(v) for v in self.videos)
        mb = sum(v.nbytes for v in self.videos) / 2**20
        side = f", max side {self.max_side}" if self.max_side else ""
        return (f"videos {self.name}: {len(self.files)} file(s), {n_frames} frames ({mb:.0f} MB{side}), "
                f"{len(self)} triplets (strides {','.join(map(str, self.strides))}"
                f"{'; spans ' + ','.join(map(str, self.spans)) if self.spans else ''}), skipped "
                f"{self.skipped_cuts} across {self.num_cuts} scene cut(s) and {self.skipped_duplicates} "
                f"with duplicate frames")


# --------------------------------------------------------------------------- building


class TripletDataset(ConcatDataset):
    """ConcatDataset of triplet sources with describe() and set_epoch() forwarded."""

    def set_epoch(self, epoch: int) -> None:
        for d in self.datasets:
            d.set_epoch(epoch)

    def describe(self) -> str:
        lines = [d.describe() for d in self.datasets]
        return f"{len(self)} triplets from {len(lines)} source(s)\n" + "\n".join("  " + ln for ln in lines)


def _synthetic_n(spec: str) -> int | None:
    """"synthetic" -> default n, "synthetic:N" -> N, anything else -> None."""
    if spec == SYNTHETIC:
        return DEFAULT_SYNTHETIC_N
    if spec.startswith(SYNTHETIC + ":"):
        try:
            return int(spec.split(":", 1)[1])
        except ValueError:
            raise DataError(f"bad data source {spec!r}; use synthetic or synthetic:N") from None
    return None


def is_vimeo_root(path: Path) -> bool:
    """A directory laid out like Vimeo-90k (a list file or a sequences/ folder)."""
    return path.is_dir() and any((path / n).exists() for n in ("tri_trainlist.txt", "tri_testlist.txt", "sequences"))


def build_dataset(paths: Sequence[Path | str], crop: int, strides: Iterable[int] = (1, 2),
                  max_frames_per_video: int | None = 600, max_side: int | None = None, *,
                  split: str = "train", seed: int = 0, pan: int = 0, spans: Iterable[int] = ()) -> TripletDataset:
    """One dataset over all sources: a Vimeo-90k root, "synthetic[:N]" (when no such path exists),
    or a video file / folder of videos (each path one VideoTriplets)."""
    if not paths:
        raise DataError("no training data given")
    strides = tuple(strides)
    parts: list[Seeded] = []
    for p in paths:
        path = Path(p)
        n_syn = None if path.exists() else _synthetic_n(str(p))
        if n_syn is not None:
            parts.append(SyntheticTriplets(n=n_syn, size=crop, seed=seed))
        elif is_vimeo_root(path):
            parts.append(VimeoTriplets(path, split=split, crop=crop, seed=seed))
        else:
            parts.append(VideoTriplets([path], crop=crop, strides=strides, max_frames_per_video=max_frames_per_video,
                                       max_side=max_side, seed=seed, augment=split == "train", name=str(path),
                                       spans=spans))
    for part in parts:
        part.pan = pan
    return TripletDataset(parts)
