"""vfi_cli.data: Vimeo layout, video triplets (cuts, duplicates, errors), synthetic, augmentation."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from clips import make_clip, pattern_frame
from vfi_cli.training import augment, data, synthetic
from vfi_cli.errors import DataError
from vfi_cli.frames import from_tensor


def write_frames(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """Lossless FFV1 .mkv of the given HxWx3 uint8 frames."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("ffv1", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "bgr0"
        for f in frames:
            out.mux(vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(vs.encode(None))
    return path


def moving(i: int, inverted: bool = False) -> np.ndarray:
    f = pattern_frame(i, 32, 32, "moving")
    return 255 - f[:, ::-1] if inverted else f


def make_vimeo(root: Path, n: int = 3, size=(40, 32), middle_equals_first: bool = False) -> Path:
    """Tiny Vimeo-90k layout (train list only) with n sequences of random PNGs."""
    rng = np.random.default_rng(0)
    names = []
    for k in range(n):
        name = f"{k // 2 + 1:05d}/{k % 2 + 1:04d}"
        folder = root / "sequences" / name
        folder.mkdir(parents=True)
        ims = [rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(3)]
        if middle_equals_first:
            ims[1] = ims[0]
        for j, im in enumerate(ims):
            Image.fromarray(im).save(folder / f"im{j + 1}.png")
        names.append(name)
    (root / "tri_trainlist.txt").write_text("\n".join(names) + "\n")
    return root


def check_item(x: torch.Tensor, s: int) -> None:
    assert x.shape == (3, 3, s, s) and x.dtype == torch.float32
    assert -1.0 <= x.min() and x.max() <= 1.0


# --------------------------------------------------------------------------- Vimeo


def test_vimeo_layout(tmp_path):
    root = make_vimeo(tmp_path / "vimeo")
    ds = data.VimeoTriplets(root, crop=16)
    assert len(ds) == 3
    check_item(ds[2], 16)
    full = data.VimeoTriplets(root, crop=None, augment=False)
    im2 = np.asarray(Image.open(root / "sequences/00001/0002/im2.png"))
    assert np.array_equal(from_tensor(full[1])[1], im2)
    assert "3 triplets" in ds.describe()


def test_vimeo_missing_list_file(tmp_path):
    root = make_vimeo(tmp_path / "vimeo")
    with pytest.raises(DataError, match="tri_testlist.txt"):
        data.VimeoTriplets(root, split="test")
    with pytest.raises(DataError, match=r"crop 64 larger than 40x32 .*--crop <= 32"):
        data.VimeoTriplets(root, crop=64)[0]


# --------------------------------------------------------------------------- videos


def test_video_triplet_count(tmp_path):
    clip = make_clip(tmp_path / "a.mkv", n_frames=12)
    ds = data.VideoTriplets([clip], crop=16, strides=(1, 2))
    assert len(ds) == 10 + 8
    assert ds.skipped_cuts == 0 and ds.skipped_duplicates == 0
    check_item(ds[0], 16)
    vid, i, k, n = ds.index[-1]
    assert (i, k, n) == (7, 2, 4)
    assert np.array_equal(ds.triplet(len(ds) - 1)[2], pattern_frame(11, 32, 32))


def test_video_uneven_triplets_carry_their_time(tmp_path):
    clip = make_clip(tmp_path / "a.mkv", n_frames=12)
    ds = data.VideoTriplets([clip], crop=16, strides=(1,), spans=(3,))
    assert len(ds) == 11 - 0 - 1 + 2 * (12 - 3)  # stride 1: 10 triplets; span 3: k = 1, 2 at 9 starts each
    times = sorted({ds.time(i) for i in range(len(ds))})
    assert times == pytest.approx([1 / 3, 0.5, 2 / 3])
    j = next(i for i in range(len(ds)) if tuple(ds.index[i, 2:]) == (1, 3))
    start = int(ds.index[j, 1])
    trip = ds.triplet(j)
    assert np.array_equal(trip[1], pattern_frame(start + 1, 32, 32))
    assert np.array_equal(trip[2], pattern_frame(start + 3, 32, 32))
    seen = set()
    for epoch in range(8):  # temporal reversal maps t to 1 - t
        ds.set_epoch(epoch)
        frames, t = ds[j]
        assert frames.shape == (3, 3, 16, 16)
        seen.add(round(t, 4))
    assert seen == {round(1 / 3, 4), round(2 / 3, 4)}
    with pytest.raises(DataError, match="spans"):
        data.VideoTriplets([clip], crop=16, spans=(1,))


def test_video_hard_cut_skipped(tmp_path):
    frames = [moving(i) for i in range(6)] + [moving(i, inverted=True) for i in range(6, 12)]
    ds = data.VideoTriplets([write_frames(tmp_path / "cut.mkv", frames)], crop=16, strides=(1, 2))
    assert ds.num_cuts == 1
    # stride 1: (4,5,6), (5,6,7); stride 2: i = 2..5 straddle the cut between 5 and 6
    assert ds.skipped_cuts == 2 + 4
    assert len(ds) == 18 - 6
    for k in range(len(ds)):
        _, i, _, n = ds.index[k]
        assert i + n <= 5 or i >= 6


def test_video_duplicates_skipped(tmp_path):
    frames = [moving(0), moving(1), moving(1)] + [moving(i) for i in range(2, 7)]  # frame 2 repeats 1
    ds = data.VideoTriplets([write_frames(tmp_path / "dup.mkv", frames)], crop=16, strides=(1, 2))
    assert ds.skipped_duplicates == 2  # (0,1,2) and (1,2,3)
    assert len(ds) == 6 - 2 + 4
    static = make_clip(tmp_path / "static.mkv", n_frames=6, pattern="static")
    assert len(data.VideoTriplets([static], crop=16)) == 0


def test_video_errors(tmp_path):
    clip = make_clip(tmp_path / "small.mkv", n_frames=4)
    with pytest.raises(DataError, match=r"crop 64 larger than 32x32 in .*small\.mkv; use --crop <= 32"):
        data.VideoTriplets([clip], crop=64)
    short = make_clip(tmp_path / "short.mkv", n_frames=2)
    with pytest.raises(DataError, match="short.mkv: 2 frame"):
        data.VideoTriplets([short], crop=16)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a video")
    with pytest.raises(DataError, match="no videos"):
        data.VideoTriplets([tmp_path / "empty"], crop=16)
    with pytest.raises(DataError, match="not found"):
        data.build_dataset([tmp_path / "missing"], crop=16)


def test_video_folder_and_max_side(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    make_clip(folder / "a.mkv", n_frames=5)
    make_clip(folder / "b.MKV", n_frames=5, width=64, height=48)
    (folder / "readme.txt").write_text("ignored")
    ds = data.VideoTriplets([folder], crop=16, strides=(1,), max_side=32)
    assert len(ds.files) == 2 and len(ds) == 3 + 3
    assert ds.videos[1].shape == (5, 24, 32, 3)  # 64x48 -> 32x24, aspect kept
    with pytest.raises(DataError, match=r"after --max-side 16"):
        data.VideoTriplets([folder], crop=20, max_side=16)
    assert len(data.VideoTriplets([folder], crop=16, max_frames_per_video=3, strides=(1,))) == 2


# --------------------------------------------------------------------------- augmentation


def test_augmentation_moves_three_frames_together():
    rng = np.random.default_rng(0)
    x0 = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    x2 = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    trip = np.stack([x0, x0, x2])  # x1 = x0
    seen_reverse = seen_rot = 0
    for seed in range(40):
        out = augment.augment(trip, 16, np.random.default_rng(seed))
        assert out.shape == (3, 16, 16, 3)
        if np.array_equal(out[0], out[1]):
            assert not np.array_equal(out[1], out[2])
        else:  # temporally reversed: x2 first
            assert np.array_equal(out[1], out[2])
            seen_reverse += 1
        seen_rot += int(not any(np.array_equal(out[1], v) for v in _flips_of_crops(x0, 16)))
    assert 5 < seen_reverse < 35 and seen_rot > 0


def _flips_of_crops(img: np.ndarray, s: int):
    for y in range(img.shape[0] - s + 1):
        for x in range(img.shape[1] - s + 1):
            c = img[y : y + s, x : x + s]
            yield from (c, c[::-1], c[:, ::-1], c[::-1, ::-1])


def test_augmentation_in_dataset_consistent(tmp_path):
    ds = data.VimeoTriplets(make_vimeo(tmp_path / "v", middle_equals_first=True), crop=16)
    for ep in range(6):
        ds.set_epoch(ep)
        x = ds[0]
        assert torch.equal(x[0], x[1]) or torch.equal(x[2], x[1])


def test_determinism_by_seed(tmp_path):
    clip = make_clip(tmp_path / "a.mkv", n_frames=8, width=48, height=40)
    a = data.VideoTriplets([clip], crop=16, seed=1)
    b = data.VideoTriplets([clip], crop=16, seed=1)
    assert all(torch.equal(a[k], b[k]) for k in range(len(a)))
    c = data.VideoTriplets([clip], crop=16, seed=2)
    assert not all(torch.equal(a[k], c[k]) for k in range(len(a)))
    b.set_epoch(1)
    assert not all(torch.equal(a[k], b[k]) for k in range(len(a)))


# --------------------------------------------------------------------------- synthetic + build


def test_synthetic_triplets():
    ds = synthetic.SyntheticTriplets(n=4, size=32, seed=0)
    x = ds[0]
    check_item(x, 32)
    assert not torch.equal(x[0], x[1]) and not torch.equal(x[1], x[2])
    assert torch.equal(x, synthetic.SyntheticTriplets(n=4, size=32, seed=0)[0])
    assert not torch.equal(x, ds[1])
    assert not torch.equal(x, synthetic.SyntheticTriplets(n=4, size=32, seed=1)[0])
    with pytest.raises(IndexError):
        ds[4]


def test_build_dataset_mixes_sources(tmp_path):
    root = make_vimeo(tmp_path / "vimeo", size=(32, 32))
    clip = make_clip(tmp_path / "a.mkv", n_frames=6)
    ds = data.build_dataset(["synthetic:5", root, clip], crop=16, strides=(1, 2))
    assert len(ds) == 5 + 3 + (4 + 2)
    for k in (0, 5, 8, len(ds) - 1):
        check_item(ds[k], 16)
    text = ds.describe()
    assert "synthetic: 5" in text and "vimeo" in text and "a.mkv" in text and "skipped 0" in text
    ds.set_epoch(3)
    assert all(d.epoch == 3 for d in ds.datasets)
    assert len(data.build_dataset(["synthetic"], crop=16)) == synthetic.DEFAULT_SYNTHETIC_N
    with pytest.raises(DataError):
        data.build_dataset([], crop=16)


def test_pan_augmentation_is_a_linear_camera_move():
    # each pixel holds its own (y, x): the crop offsets of the three frames can be read back
    h, w = 40, 48
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    img = np.stack([yy, xx, np.zeros_like(yy)], axis=-1).astype(np.uint8)
    trip = np.stack([img, img, img])
    panned = 0
    for seed in range(40):
        out = augment.augment(trip, 16, np.random.default_rng(seed), flip=False, reverse=False, rotate=False, pan=6)
        o = [out[k, 0, 0, :2].astype(int) for k in range(3)]  # (y, x) of each frame's top-left
        step = o[1] - o[0]
        assert np.array_equal(o[2] - o[1], step)  # the same shift again: linear motion
        assert np.abs(step).max() <= 6
        panned += int(np.abs(step).max() > 0)
    assert 5 < panned < 35  # about half the crops
    # no pan without the option, and no room -> no pan
    still = augment.augment(trip, 16, np.random.default_rng(1), rotate=False, flip=False, reverse=False)
    assert np.array_equal(still[0], still[2])
    small = trip[:, :16, :16]
    out = augment.augment(small, 16, np.random.default_rng(3), pan=6)
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[1], out[2])
