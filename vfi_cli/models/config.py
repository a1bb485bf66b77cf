"""Frozen, typed configs for every model, their presets (tiny, small, base), and JSON (de)serialization.

A model directory's config.json is `to_dict` of these dataclasses (field names and plain JSON values,
never module or class paths); `from_dict` checks every field's type and names the bad one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Type, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class VQGANConfig:
    """Autoencoder of the middle frame given its neighbours: a posterior encoder q(z1 | x1, x0', x2', t)
    with a KL-regularised latent, and an interpolating decoder G(z1, x0, x2, t).

    x0', x2' are the neighbours aligned on time t by the block matcher; the latent codes what they
    cannot tell (motion corrections, occlusions, new content), so the decoder needs it.
    """

    in_channels: int = 3
    ch: int = 32  # base width of the posterior encoder
    ch_mult: tuple[int, ...] = (1, 2)  # one entry per encoder scale after the stride-2 stem (2 -> latent at 1/4)
    num_res_blocks: int = 1  # ResBlocks per encoder scale
    embed_dim: int = 8  # latent channels (what the diffusion model sees)
    z_ch: int = 64  # width of the decoder's latent path
    # neighbour feature pyramid and flow estimator: channels at scales 1/2, 1/4, 1/8, ...;
    # the length sets the coarsest flow level (4 levels -> 1/16). Flows are refined down to
    # 1/2 resolution and upsampled; a light full-resolution head predicts the residual.
    pyramid_ch: tuple[int, ...] = (24, 32, 48, 64)
    flow_ch: tuple[int, ...] = (32, 48, 64, 96)
    head_ch: int = 16  # width of the full-resolution residual head
    # parameter-free motion alignment before the decoder (vfi_cli/motion.py): block matching
    # from 1/align_scales[0] to 1/align_scales[-1] resolution; () = off (the decoder sees the
    # raw neighbours and must find all the motion itself)
    align_scales: tuple[int, ...] = ()
    align_radii: tuple[int, ...] = ()
    align_window: int = 9
    align_sharpness: float = 50.0
    align_smooth: int = 9
    warp_mode: str = "bilinear"  # sampling of the final full-resolution warps: bilinear | bicubic
    # (lo, hi) in 8-bit levels: where the neighbours differ by less than lo (9x9 mean), the output is
    # their blend at t, above hi the model's frame, linear between (motion.static_weight); () = off
    static_gate: tuple[float, ...] = (1.5, 4.0)
    # after the decoder's flows, refine_iters Lucas-Kanade steps align the two warped neighbours with
    # each other over a refine_window box (vfi_cli/models/refine.py); 0 = off (as trained)
    refine_iters: int = 0
    refine_window: int = 15
    refine_lambda: float = 4.0
    refine_max: float = 1.0

    # fields that change how the decoder runs but not its parameters
    SETTINGS = ("align_scales", "align_radii", "align_window", "align_sharpness", "align_smooth", "warp_mode",
                "static_gate", "refine_iters", "refine_window", "refine_lambda", "refine_max")

    def settings(self) -> dict[str, object]:
        """The run-time decoder settings (SETTINGS) of this config, by name."""
        return {k: getattr(self, k) for k in self.SETTINGS}

    def latent_fields(self) -> dict[str, object]:
        """The fields that define the latent space (the posterior encoder)."""
        return {k: getattr(self, k) for k in ("in_channels", "ch", "ch_mult", "num_res_blocks", "embed_dim")}

    @property
    def factor(self) -> int:
        """Spatial downsampling of the latent (stride-2 stem, then one halving per extra scale)."""
        return 2 ** len(self.ch_mult)

    @property
    def stride(self) -> int:
        """Frame sizes are padded to a multiple of this."""
        return max(self.factor, 2 ** len(self.pyramid_ch))


@dataclass(frozen=True)
class UNetConfig:
    """Denoiser eps/v_theta(concat(z1_t, c), t) on the latent grid; c is a context computed once per
    pair from the aligned neighbours, the block matcher's motion and the frame time."""

    latent_channels: int = 8  # must equal VQGANConfig.embed_dim
    context_ch: int = 32  # channels of the context c (a strided conv stem at the latent's resolution)
    ch: int = 64  # base width
    ch_mult: tuple[int, ...] = (1, 2, 2)  # one entry per U-Net level
    num_res_blocks: int = 1  # per level, down path (up path has one more)
    attn_levels: tuple[int, ...] = (2,)  # indices into ch_mult with self-attention
    num_heads: int = 4
    dropout: float = 0.0
    attn_window: int = 0  # > 0: attention within windows of at most this many positions a side (0: global)


@dataclass(frozen=True)
class SchedulerConfig:
    """The diffusion process the denoiser was trained on (samplers read this)."""

    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"  # "linear" | "cosine"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction_type: str = "v"  # "eps" | "v"


@dataclass(frozen=True)
class LDMConfig:
    """Everything `vfi double` needs to rebuild the interpolator."""

    vqgan: VQGANConfig = field(default_factory=VQGANConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    latent_scale: float = 1.0  # z is multiplied by this before diffusion (unit variance)
    default_sampler: str = "ddim"
    default_steps: int = 8
    default_temperature: float = 1.0  # scale of the sampler's noise, in [0, 1] (vfi_cli.models.sampling)


PRESETS: dict[str, LDMConfig] = {
    # tests: runs in milliseconds on 32x32 frames
    "tiny": LDMConfig(
        vqgan=VQGANConfig(ch=8, ch_mult=(1, 2), embed_dim=5, z_ch=8,
                          pyramid_ch=(8, 8, 8, 8), flow_ch=(8, 8, 8, 8), head_ch=8,
                          align_scales=(8, 4, 2), align_radii=(2, 1, 1), align_window=5, align_smooth=3),
        unet=UNetConfig(latent_channels=5, context_ch=8, ch=16, ch_mult=(1, 2), attn_levels=(1,), num_heads=2),
        scheduler=SchedulerConfig(num_train_timesteps=50),
        default_steps=4,
    ),
    # the shipped default: trains on a 2-core CPU in hours
    "small": LDMConfig(vqgan=VQGANConfig(align_scales=(32, 16, 8, 4, 2), align_radii=(3, 2, 2, 2, 1),
                                         warp_mode="bicubic"),
                       unet=UNetConfig(ch=32, ch_mult=(1, 2, 4), attn_levels=(2,), num_heads=4,
                                       attn_window=8),  # its training crops' 8 x 8 map: RESULTS.md
                       # both chosen on the validation split (benchmarks/RESULTS.md)
                       default_steps=1, default_temperature=0.0),
    # a GPU model of the seed paper's size
    "base": LDMConfig(
        vqgan=VQGANConfig(ch=64, ch_mult=(1, 2), num_res_blocks=2, embed_dim=16, z_ch=128,
                          pyramid_ch=(64, 96, 128, 192), flow_ch=(64, 96, 160, 256), head_ch=32,
                          align_scales=(32, 16, 8, 4, 2), align_radii=(3, 2, 2, 2, 1), warp_mode="bicubic"),
        unet=UNetConfig(latent_channels=16, context_ch=64, ch=128, ch_mult=(1, 2, 3, 4), num_res_blocks=2,
                        attn_levels=(2, 3), num_heads=8),
    ),
}


# Fields that take one of a few strings (default_sampler: the names in vfi_cli.models.schedulers.SAMPLERS).
CHOICES: dict[str, tuple[str, ...]] = {
    "warp_mode": ("bilinear", "bicubic"),
    "beta_schedule": ("linear", "cosine"),
    "prediction_type": ("eps", "v"),
    "default_sampler": ("ddim", "dpm", "ddpm"),
}


class ConfigError(ValueError):
    """A config field of the wrong type or value; the message names the field and shows the value."""


def _show(where: str, value: Any) -> str:
    return f"{json.dumps(where.rsplit('.', 1)[-1])}: {json.dumps(value)}"


def _check(where: str, hint: Any, value: Any) -> Any:
    """`value` converted to the field type `hint` (lists -> tuples), or ConfigError naming `where`."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{_show(where, value)} must be an object of {hint.__name__} fields")
        return _build(hint, value, where)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{_show(where, value)} must be a list of {item.__name__}s")
        return tuple(_check(f"{where}[{i}]", item, v) for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):  # X | None
        if value is None:
            return None
        return _check(where, next(a for a in typing.get_args(hint) if a is not type(None)), value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{_show(where, value)} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{_show(where, value)} must be an integer")
        if value < 0:
            raise ConfigError(f"{_show(where, value)} must not be negative")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{_show(where, value)} must be a number")
        return float(value)
    if hint is str:
        choices = CHOICES.get(where.rsplit(".", 1)[-1])
        if not isinstance(value, str) or (choices and value not in choices):
            want = " | ".join(choices) if choices else "a string"
            raise ConfigError(f"{_show(where, value)} must be {want}")
        return value
    return value


def _build(cls: Type[T], data: dict[str, Any], where: str = "") -> T:
    """Build a (nested) dataclass from a dict: unknown keys and every wrongly typed field are ConfigErrors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__} must be an object of {cls.__name__} fields")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    kwargs = {key: _check(f"{where}.{key}" if where else key, hints[key], value) for key, value in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass -> JSON-ready dict."""
    return dataclasses.asdict(cfg)


def from_dict(cls: Type[T], data: dict[str, Any]) -> T:
    """JSON dict -> dataclass (nested, strict)."""
    return _build(cls, data)


def dumps(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)


def preset(name: str) -> LDMConfig:
    """A named preset; raises KeyError listing the valid names."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
