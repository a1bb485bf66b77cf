"""Training-time augmentation of frame triplets: one random crop / flip / rotation / temporal
reversal for the three frames together, plus an optional simulated camera pan."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset


def augment(trip: np.ndarray, crop: int | None, rng: np.random.Generator, *, flip: bool = True,
            reverse: bool = True, rotate: bool = True, pan: int = 0) -> np.ndarray:
    """uint8 [3, H, W, 3] -> uint8 [3, S, S, 3]; the same random transform for the three frames.

    pan > 0: half the crops slide by an integer (dx, dy) with |dx|, |dy| <= pan (limited by the
    room around the crop) from x0 to x1 and again to x2, a camera pan on top of the clip's own
    motion, which stays linear; it teaches motion larger than the training clips have.
    """
    if crop is not None:
        h, w = trip.shape[1:3]
        dy = dx = 0
        if pan > 0 and rng.random() < 0.5:
            ry, rx = min(pan, (h - crop) // 2), min(pan, (w - crop) // 2)
            dy, dx = int(rng.integers(-ry, ry + 1)), int(rng.integers(-rx, rx + 1))
        y = int(rng.integers(abs(dy), h - crop - abs(dy) + 1))
        x = int(rng.integers(abs(dx), w - crop - abs(dx) + 1))
        trip = np.stack([trip[k, y + (k - 1) * dy : y + (k - 1) * dy + crop,
                              x + (k - 1) * dx : x + (k - 1) * dx + crop] for k in range(3)])
    if flip and rng.random() < 0.5:
        trip = trip[:, :, ::-1]  # horizontal
    if flip and rng.random() < 0.5:
        trip = trip[:, ::-1]  # vertical
    if reverse and rng.random() < 0.5:
        trip = trip[::-1]  # x0 <-> x2: the middle frame stays the middle
    if rotate and trip.shape[1] == trip.shape[2] and rng.random() < 0.5:
        trip = np.rot90(trip, int(rng.integers(1, 4)), axes=(1, 2))
    return np.ascontiguousarray(trip)


def center_crop(trip: np.ndarray, crop: int | None) -> np.ndarray:
    """uint8 [3, H, W, 3] -> [3, S, S, 3] centre window (no randomness; evaluation)."""
    if crop is None:
        return trip
    h, w = trip.shape[1:3]
    y, x = (h - crop) // 2, (w - crop) // 2
    return np.ascontiguousarray(trip[:, y : y + crop, x : x + crop])


class Seeded(Dataset):
    """Base: per-item Generator from (seed, epoch, index); `describe()` for reports."""

    seed: int = 0
    epoch: int = 0
    pan: int = 0  # largest camera-pan shift per frame of the crop augmentation (pixels)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws (call once per epoch / step)."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def describe(self) -> str:
        raise NotImplementedError
