"""Interpolator: a loaded model directory that synthesizes new frames for batches of frame pairs.

In: frames uint8 or uint16 [B, H, W, 3] (RGB; uploaded once as float [B, 3, H, W] in [-1, 1],
padded to the model stride), pair keys for the noise, frame times t in (0, 1) (default 1/2).
Out: new frames [B, H, W, 3] of the same dtype. Per pair: align the neighbours on t (block
matcher), sample the latent with the denoiser (the model's default sampler, steps and temperature),
decode. The latent can instead be the true frame's ("oracle") or the sampler's initial noise
("noise"): what `vfi eval --latent` measures. Inference only: nothing from vfi_cli.training or
vfi_cli.evaluation.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vfi_cli.models import checkpoint
from vfi_cli import tiling
from vfi_cli.models.config import LDMConfig
from vfi_cli.errors import VfiError, WeightsError
from vfi_cli.frames import crop_to, from_tensor, pad_to_multiple, to_tensor
from vfi_cli.models.sampling import sample_latent
from vfi_cli.models.schedulers import make_sampler

def _default_weights() -> Path:
    """The shipped model: inside an installed wheel (vfi_cli/weights/default, mapped from the
    repository's weights/), else in the checkout of an editable install (weights/default)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "weights" / "default", here.parent / "weights" / "default"):
        if (candidate / checkpoint.CONFIG).is_file():
            return candidate
    return here / "weights" / "default"


DEFAULT_WEIGHTS = _default_weights()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VfiError("--device cuda: no CUDA device is available (use --device cpu)")
    return torch.device(name)


LATENTS = ("sampled", "oracle", "noise")  # where the decoded latent comes from (`vfi eval --latent`)


@dataclass
class Encoded:
    """Frames on the device in [-1, 1], padded to the model stride (each uploaded once and reused by
    both of its pairs; latents are per pair, sampled by ``Interpolator.middles``)."""

    x: torch.Tensor  # [B, 3, Hp, Wp] in [-1, 1]
    hw: tuple[int, int]  # original (H, W)

    def __len__(self) -> int:
        return self.x.shape[0]

    def select(self, idx: torch.Tensor | slice) -> "Encoded":
        return Encoded(self.x[idx], self.hw)

    @staticmethod
    def cat(parts: list["Encoded"]) -> "Encoded":
        return Encoded(torch.cat([p.x for p in parts]), parts[0].hw)


class Interpolator:
    """Holds the autoencoder and the denoiser (inference parts only) on one device."""

    def __init__(self, cfg: LDMConfig, vqgan, unet, *, device: torch.device, sampler: str | None = None,
                 steps: int | None = None, temperature: float | None = None, seed: int = 0,
                 precision: str = "auto", sha256: str = "",
                 tile_pixels: int = tiling.DEFAULT_TILE_PIXELS, tile_overlap: int = tiling.DEFAULT_OVERLAP):
        self.cfg = cfg
        if tile_pixels and tile_pixels < (4 * tile_overlap) ** 2:
            raise VfiError(f"--tile-pixels must be 0 (never tile) or at least {(4 * tile_overlap) ** 2} "
                           f"(tiles of {4 * tile_overlap}x{4 * tile_overlap}, {tile_overlap} px shared)")
        self.tile_pixels = tile_pixels  # larger frames are sampled and decoded in overlapping tiles
        self.tile_overlap = tile_overlap
        self.device = device
        self.vqgan = vqgan.to(device).eval()
        self.unet = unet.to(device).eval()
        self.sampler_name = sampler or cfg.default_sampler
        self.temperature = cfg.default_temperature if temperature is None else float(temperature)
        try:  # the sampler's own checks (name, temperature), as a one-line error before any frame is read
            make_sampler(self.sampler_name, cfg.scheduler, self.temperature)
        except ValueError as e:
            raise VfiError(f"{e} (--sampler, --temperature, or the model's config defaults)") from None
        self.steps = steps or cfg.default_steps
        if not 1 <= self.steps <= cfg.scheduler.num_train_timesteps:
            raise VfiError(f"--steps must be between 1 and {cfg.scheduler.num_train_timesteps}")
        self.seed = seed
        self.sha256 = sha256
        if precision == "auto":
            precision = "bf16" if device.type == "cuda" else "fp32"
        if precision != "fp32" and device.type != "cuda":
            raise VfiError(f"--precision {precision} needs a CUDA device; on {device.type} use fp32")
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        if device.type == "cpu":  # the CPU convolutions are fastest on NHWC
            self.vqgan.to(memory_format=torch.channels_last)
            self.unet.to(memory_format=torch.channels_last)
        stride_unet = cfg.vqgan.factor * 2 ** (len(cfg.unet.ch_mult) - 1)
        self.stride = max(cfg.vqgan.stride, stride_unet)

    @classmethod
    def load(cls, weights: Path | None = None, *, device: str = "auto", **kw) -> "Interpolator":
        path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        if weights is None and not (path / checkpoint.CONFIG).is_file():
            raise WeightsError("no trained default weights are installed with this vfi; "
                               "pass --weights DIR (a directory made by `vfi train-ldm`)")
        cfg, vqgan, unet, data = checkpoint.load_interpolator(path)
        cfg_scale = data.get("latent_scale", cfg.latent_scale)
        if cfg_scale != cfg.latent_scale:
            from dataclasses import replace
            cfg = replace(cfg, latent_scale=cfg_scale)
        sha = checkpoint.sha256_file(path / checkpoint.WEIGHTS)
        return cls(cfg, vqgan, unet, device=resolve_device(device), sha256=sha, **kw)

    def describe(self) -> str:
        temp = "" if self.temperature == 1.0 else f", temperature {self.temperature:g}"
        return f"{self.sampler_name} x{self.steps} steps{temp} on {self.device}"

    def _autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @torch.inference_mode()
    def encode(self, frames: np.ndarray) -> Encoded:
        """frames [B, H, W, 3] uint8 or uint16 -> Encoded (on the device, padded to the model stride)."""
        x = to_tensor(frames).to(self.device)
        hw = (x.shape[-2], x.shape[-1])
        x, _ = pad_to_multiple(x, self.stride)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return Encoded(x, hw)

    def _generators(self, keys: list[int]) -> list[torch.Generator]:
        """One CPU generator per pair, seeded from (seed, pair key): results do not depend on batching."""
        return [torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, key]).generate_state(1)[0]))
                for key in keys]

    def pair_noise(self, keys: list[int], hw: tuple[int, int]) -> tuple[list[torch.Generator], torch.Tensor]:
        """The pairs' generators and the standard latent noise drawn from them first, [B, C, Hp/f, Wp/f]
        on the device, for frames of padded size hw = (Hp, Wp) (the generators go on to DDPM's steps)."""
        f, c = self.cfg.vqgan.factor, self.cfg.unet.latent_channels
        gens = self._generators(keys)
        noise = torch.stack([torch.randn((c, hw[0] // f, hw[1] // f), generator=g) for g in gens])
        return gens, noise.to(self.device)

    def grid(self, hw: tuple[int, int]) -> tiling.TileGrid:
        """How frames of padded size hw = (Hp, Wp) are cut into tiles (one tile when they fit)."""
        return tiling.plan(hw[0], hw[1], self.tile_pixels, self.tile_overlap, self.stride)

    @torch.inference_mode()
    def middles(self, a: Encoded, b: Encoded, keys: list[int], timings: dict[str, float] | None = None,
                dtype: np.dtype | type = np.uint8, t: torch.Tensor | None = None, latent: str = "sampled",
                truth: Encoded | None = None) -> np.ndarray:
        """New frames between the pairs (a[i], b[i]) at times t [B] (default 0.5) -> [B, H, W, 3] of
        ``dtype`` (uint8, or uint16 for sources above 8 bits).

        Per pair: align on t (block matcher), sample the latent with the denoiser from noise keyed
        by keys[i], decode. latent="oracle" decodes the posterior mean of the true frames `truth`
        instead (what a perfect denoiser returns); "noise" decodes the sampler's initial noise at
        temperature 1, i.e. a draw from the latent's prior (no denoising: the EDEN test). Adds the
        seconds of "sampler" and "align + decoder" to ``timings``."""
        if latent not in LATENTS:
            raise VfiError(f"unknown latent source {latent!r}; choose one of {', '.join(LATENTS)}")
        if latent == "oracle" and truth is None:
            raise VfiError("the oracle latent needs the true frames")
        n = len(a)
        t = torch.full((n,), 0.5, device=self.device) if t is None else t.to(self.device, torch.float32)
        f = self.cfg.vqgan.factor
        hp, wp = a.x.shape[-2:]
        gens, noise = self.pair_noise(keys, (hp, wp))
        spent = {"sampler": 0.0, "align + decoder": 0.0}
        scale = self.cfg.latent_scale
        if latent == "noise":  # the sampler's x_T at temperature 1, unscaled: decoding with no denoising
            noise = noise * make_sampler(self.sampler_name, self.cfg.scheduler).init_noise_sigma / scale

        def synth(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
            def cut(x: torch.Tensor, s: int = 1) -> torch.Tensor:  # the window on a grid s times coarser
                return x[..., y0 // s:y1 // s, x0 // s:x1 // s]

            c0 = time.perf_counter()
            with self._autocast():
                pair = self.vqgan.prepare(cut(a.x), cut(b.x), t)
                c1 = time.perf_counter()
                if latent == "oracle":
                    z = self.vqgan.encode(cut(truth.x), pair)
                elif latent == "noise":
                    z = cut(noise, f)
                else:
                    z = sample_latent(self.unet, self.cfg.scheduler, self.unet.context(pair).float(), cut(noise, f),
                                      self.sampler_name, self.steps, gens, self._autocast,
                                      self.temperature) / scale
                c2 = time.perf_counter()
                out = self.vqgan.decode(z.to(pair.x0.dtype), pair).float()
            spent["sampler"] += c2 - c1
            spent["align + decoder"] += (c1 - c0) + time.perf_counter() - c2
            return out

        pred = tiling.blend(self.grid((hp, wp)), synth)  # [B, 3, Hp, Wp]
        out = from_tensor(crop_to(pred, a.hw), dtype)
        if timings is not None:
            for k, v in spent.items():
                timings[k] = timings.get(k, 0.0) + v
        return out

    def sequential_pairs(self, latent: str = "sampled"):
        """A pair method (a, b[, truth], t=times -> new frames) that keys noise by a running pair
        index, so a sequence of calls gives the same result whatever the batch sizes (what `vfi eval`
        and benchmarks use); t: [B] frame times (default 1/2); `truth` (the true frames) is needed by
        latent="oracle"."""
        done = [0]

        def method(a: np.ndarray, b: np.ndarray, truth: np.ndarray | None = None,
                   t: np.ndarray | None = None) -> np.ndarray:
            times = None if t is None else torch.as_tensor(np.asarray(t, dtype=np.float32))  # [B]
            out = self.interpolate_pairs(a, b, first_key=done[0], latent=latent, truth=truth, t=times)
            done[0] += len(a)
            return out

        return method

    def interpolate_pairs(self, a: np.ndarray, b: np.ndarray, first_key: int = 0, latent: str = "sampled",
                          truth: np.ndarray | None = None, t: torch.Tensor | None = None) -> np.ndarray:
        """Convenience for evaluation: a, b [B, H, W, 3] uint8 -> new frames [B, H, W, 3] uint8
        (truth: the true frames, for latent="oracle")."""
        ea, eb = self.encode(a), self.encode(b)
        et = self.encode(truth) if truth is not None else None
        return self.middles(ea, eb, list(range(first_key, first_key + len(a))), t=t, latent=latent, truth=et)
