"""Model directories: model.safetensors + config.json, written atomically, loaded strictly.

Layouts:
  autoencoder dir: config.json {kind: "vqgan", vqgan: {...}} + model.safetensors
  interpolator dir: config.json {kind: "vfi", model: LDMConfig, autoencoder_sha256} +
                    model.safetensors (U-Net) + autoencoder/ (an autoencoder dir)
safetensors hold EMA weights of the unwrapped modules; config.json holds plain JSON (no module
paths), so moving a class between modules does not change the format. Loading is strict: a missing,
extra or reshaped tensor is a WeightsError naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from vfi_cli.models.config import LDMConfig, VQGANConfig, from_dict, to_dict
from vfi_cli.errors import WeightsError

FORMAT_VERSION = 2  # 2: posterior encoder + KL latent (v4); 1 (v1-v3) had a VQ codebook
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
AUTOENCODER = "autoencoder"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write_bytes(path: Path, writer) -> None:
    """Write via a temp file in the same directory, then rename over path."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_state(path: Path, state: dict[str, torch.Tensor]) -> None:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    _atomic_write_bytes(path, lambda tmp: save_file(tensors, tmp))


def save_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True)
    _atomic_write_bytes(path, lambda tmp: Path(tmp).write_text(text))


def save_autoencoder(out: Path, cfg: VQGANConfig, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_state(out / WEIGHTS, state)
    save_json(out / CONFIG, {"kind": "vqgan", "format_version": FORMAT_VERSION,
                             "vqgan": to_dict(cfg), **meta})


def save_interpolator(out: Path, cfg: LDMConfig, unet_state: dict[str, torch.Tensor],
                      autoencoder_dir: Path, meta: dict[str, Any]) -> None:
    """Write a complete model directory (copies the autoencoder dir inside unless already there)."""
    out.mkdir(parents=True, exist_ok=True)
    ae_out = out / AUTOENCODER
    if autoencoder_dir.resolve() != ae_out.resolve():
        ae_out.mkdir(exist_ok=True)
        for name in (WEIGHTS, CONFIG):
            _atomic_write_bytes(ae_out / name, lambda tmp, n=name: shutil.copyfile(autoencoder_dir / n, tmp))
    save_state(out / WEIGHTS, unet_state)
    save_json(out / CONFIG, {"kind": "vfi", "format_version": FORMAT_VERSION, "model": to_dict(cfg),
                             "autoencoder_sha256": sha256_file(ae_out / WEIGHTS), **meta})


def read_config(path: Path, kind: str) -> dict[str, Any]:
    """config.json of a model dir, checked for kind and format version."""
    path = Path(path)
    cfg_file = path / CONFIG
    if not path.is_dir():
        raise WeightsError(f"weights directory not found: {path}")
    if not cfg_file.is_file() or not (path / WEIGHTS).is_file():
        raise WeightsError(f"{path} is not a model directory (needs {CONFIG} and {WEIGHTS})")
    try:
        data = json.loads(cfg_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise WeightsError(f"unreadable {cfg_file}: {e}") from None
    if data.get("kind") != kind:
        raise WeightsError(f"{path} holds a {data.get('kind')!r} checkpoint, expected {kind!r}")
    if data.get("format_version") != FORMAT_VERSION:
        raise WeightsError(f"{cfg_file}: format_version {data.get('format_version')} not supported "
                           f"(this vfi reads {FORMAT_VERSION})")
    return data


def _mismatch(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """One-line summary of how `state` differs from `module`'s tensors, None if they match."""
    want = module.state_dict()
    shapes = [k for k in want if k in state and tuple(state[k].shape) != tuple(want[k].shape)]
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    parts = []
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} tensor(s) of another shape (e.g. {k}: {list(state[k].shape)} in the file, "
                     f"{list(want[k].shape)} in the model)")
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    return "; ".join(parts) or None


def load_state_into(module: torch.nn.Module, path: Path) -> None:
    """Strictly load a safetensors file; a mismatch is one line naming the file and summarising it."""
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises several types for truncated/garbage files
        raise WeightsError(f"cannot read {path}: {e}") from None
    summary = _mismatch(module, state)
    if summary:
        raise WeightsError(f"{path} does not match the model in its config.json: {summary}")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise WeightsError(f"{path} does not match the model in its config.json: {detail[:200]}") from None


def warm_start(module: torch.nn.Module, autoencoder_dir: Path) -> int:
    """Copy into `module` every tensor of another autoencoder dir's weights (any format version)
    whose name and shape match, e.g. the flow decoder of an older model; returns how many."""
    path = Path(autoencoder_dir) / WEIGHTS
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises several types for missing/garbage files
        raise WeightsError(f"--warm-start: cannot read {path}: {e}") from None
    own = module.state_dict()
    hits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not hits:
        raise WeightsError(f"--warm-start: no tensor of {path} fits this model")
    with torch.no_grad():
        for k, v in hits.items():
            own[k].copy_(v)
    return len(hits)


def load_autoencoder(path: Path):
    """-> (VQGAN in eval mode, its config dict)."""
    from vfi_cli.models.autoencoder import VQGAN

    data = read_config(path, "vqgan")
    try:
        cfg = from_dict(VQGANConfig, data["vqgan"])
        model = VQGAN(cfg)
    except KeyError:
        raise WeightsError(f"invalid autoencoder config in {Path(path) / CONFIG}: no \"vqgan\" section") from None
    except (TypeError, ValueError, RuntimeError) as e:
        raise WeightsError(f"invalid autoencoder config in {Path(path) / CONFIG}: {' '.join(str(e).split())[:200]}") from None
    load_state_into(model, Path(path) / WEIGHTS)
    return model.eval(), data


def load_interpolator(path: Path):
    """-> (LDMConfig, VQGAN, UNet, config dict), both models in eval mode, autoencoder hash checked."""
    from vfi_cli.models.denoiser import UNet

    path = Path(path)
    data = read_config(path, "vfi")
    try:
        cfg = from_dict(LDMConfig, data["model"])
        unet = UNet(cfg.unet, cfg.vqgan.factor)
    except KeyError:
        raise WeightsError(f"invalid model config in {path / CONFIG}: no \"model\" section") from None
    except (TypeError, ValueError, RuntimeError) as e:
        raise WeightsError(f"invalid model config in {path / CONFIG}: {' '.join(str(e).split())[:200]}") from None
    ae_dir = path / AUTOENCODER
    vqgan, _ = load_autoencoder(ae_dir)
    want = data.get("autoencoder_sha256")
    if want and sha256_file(ae_dir / WEIGHTS) != want:
        raise WeightsError(f"{ae_dir / WEIGHTS} is not the autoencoder this denoiser was trained with "
                           "(sha256 mismatch)")
    if vqgan.cfg != cfg.vqgan:
        raise WeightsError(f"{ae_dir / CONFIG} disagrees with the autoencoder config in {path / CONFIG}")
    load_state_into(unet, path / WEIGHTS)
    return cfg, vqgan, unet.eval(), data


def _carried_meta(data: dict[str, Any]) -> dict[str, Any]:
    """A model dir's config.json minus what save_interpolator writes itself."""
    return {k: v for k, v in data.items() if k not in ("kind", "format_version", "model", "autoencoder_sha256")}


def swap_autoencoder(model_dir: Path, autoencoder_dir: Path, out: Path) -> None:
    """Write `out`: the interpolator of `model_dir` with the decoder of `autoencoder_dir`.

    Allowed only when the encoders are bit-identical (a decoder fine-tuned with
    --freeze-encoder), so the denoiser's latents mean the same thing.
    """
    cfg, old, unet, data = load_interpolator(Path(model_dir))
    new, ae_data = load_autoencoder(Path(autoencoder_dir))
    if new.cfg.latent_fields() != old.cfg.latent_fields():
        raise WeightsError(f"{autoencoder_dir} has another latent space (encoder config) than {model_dir}")
    a, b = old.state_dict(), new.state_dict()
    changed = [k for k in a if k.startswith("encoder.") and not torch.equal(a[k], b[k])]
    if changed:
        raise WeightsError(f"{autoencoder_dir} changed the encoder ({changed[0]}, ...): "
                           "retrain the denoiser on it instead")
    meta = _carried_meta(data)
    meta["decoder_finetune"] = {"from": str(autoencoder_dir), "step": ae_data.get("step")}
    cfg = dataclasses.replace(cfg, vqgan=new.cfg)  # the decoder's settings may differ
    save_interpolator(Path(out), cfg, unet.state_dict(), Path(autoencoder_dir), meta)


def use_decoder_settings(model_dir: Path, out: Path, preset_name: str, **overrides: Any) -> None:
    """Write `out`: the model of `model_dir` with the preset's decoder settings (alignment, warp
    sampling; VQGANConfig.SETTINGS), which change how the decoder runs but not its parameters;
    ``overrides`` replace some of them (e.g. align_smooth=13)."""
    from vfi_cli.models.config import VQGANConfig, preset

    unknown = set(overrides) - set(VQGANConfig.SETTINGS)
    if unknown:
        raise ValueError(f"not decoder settings: {sorted(unknown)}; choose from {', '.join(VQGANConfig.SETTINGS)}")
    cfg, vq, unet, data = load_interpolator(Path(model_dir))
    settings = preset(preset_name).vqgan.settings() | overrides
    new = dataclasses.replace(vq.cfg, **settings)
    meta = _carried_meta(data)
    meta["decoder_settings"] = {"preset": preset_name, **new.settings()}
    with tempfile.TemporaryDirectory() as tmp:
        ae_data = read_config(Path(model_dir) / AUTOENCODER, "vqgan")
        ae_meta = {k: v for k, v in ae_data.items() if k not in ("kind", "format_version", "vqgan")}
        save_autoencoder(Path(tmp) / "ae", new, vq.state_dict(), ae_meta)
        save_interpolator(Path(out), dataclasses.replace(cfg, vqgan=new), unet.state_dict(), Path(tmp) / "ae", meta)
