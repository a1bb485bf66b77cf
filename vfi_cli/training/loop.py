"""The training loop shared by `vfi train-vqgan` and `vfi train-ldm`: EMA, checkpoints, exact resume, DDP."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from vfi_cli.models.checkpoint import read_config
from vfi_cli.models.config import VQGANConfig, from_dict, preset
from vfi_cli.errors import DataError, Interrupted, TrainingError, VfiError

STATE = "trainer_state.pt"


@dataclass(frozen=True)
class TrainConfig:
    """One training run (saved in the checkpoint as the recipe)."""

    kind: str  # "vqgan" | "ldm"
    data: tuple[str, ...]  # video files, folders of videos, Vimeo-90k roots, or "synthetic"
    out: str
    preset: str = "small"
    vqgan_dir: str | None = None  # ldm only: the frozen autoencoder
    max_steps: int = 20000
    max_minutes: float | None = None  # stop (and save) after this much wall time in this process
    batch_size: int = 8
    crop: int = 128
    lr: float = 2e-4
    warmup: int = 200
    ema_decay: float = 0.999
    seed: int = 0
    ckpt_every: int = 250
    strides: tuple[int, ...] = (1, 2, 3)  # temporal strides of training triplets
    pan: int = 0  # crop augmentation: simulated camera pan of up to this many pixels per frame
    align: bool = True  # vqgan only: keep the preset's decoder settings (alignment, bicubic warp)
    max_frames_per_video: int = 600
    max_side: int | None = None  # downscale training videos so the longer side is at most this
    # autoencoder loss mix
    w_ssim: float = 0.2
    w_census: float = 0.5
    w_lpips: float = 0.1
    lpips_weights: str | None = None  # local torchvision VGG16 state dict; None = no LPIPS
    kl_weight: float = 3e-4  # weight of the latent's KL term (per element, mean)
    free_nats: float = 0.25  # per latent channel: KL below this is free (no posterior collapse)
    spans: tuple[int, ...] = ()  # also train on uneven triplets (i, i+k, i+n), n in spans: frame times k/n
    warm_start: str | None = None  # vqgan only: copy every same-named, same-shaped tensor of this autoencoder dir
    on_samples: str | None = None  # vqgan only: model dir whose denoiser samples z for part of each batch
    sample_mix: float = 0.5  # vqgan with on_samples: fraction of each batch decoded from sampled latents
    sample_steps: tuple[int, ...] = ()  # vqgan with on_samples: sampler step counts, one drawn per batch
    sample_temperature: float | None = None  # vqgan with on_samples: sampler temperature (None: the model's)
    disc_weight: float = 0.0  # 0 = no GAN
    disc_start: int = 5000
    init_from: str | None = None  # start from this autoencoder dir's (vqgan) or model dir's denoiser (ldm) weights
    decode_weight: float = 0.0  # ldm only: weight of the pixel loss of the frame decoded from the predicted latent
    chain_share: float = 0.0  # ldm only: share of each batch trained on states of the denoiser's own sampling chain
    chain_steps: int = 8  # ldm with chain_share: the longest such chain (counts are the powers of two up to it)
    freeze_encoder: bool = False  # vqgan only: train the decoder alone (latents stay valid for a denoiser)
    # vqgan with init_from: run the decoder with the init model's run-time settings ("init") or the preset's ("preset")
    decoder_settings: str = "init"


def _changed_settings(out: Path, cfg: VQGANConfig) -> str | None:
    """The run-time decoder settings (VQGANConfig.SETTINGS) that the autoencoder saved in `out` has and
    `cfg` does not, as "name=value, ..."; None when they agree or nothing was saved."""
    try:
        saved = from_dict(VQGANConfig, read_config(out, "vqgan")["vqgan"]).settings()
    except (VfiError, ValueError, KeyError):
        return None
    now = cfg.settings()
    return ", ".join(f"{k}={v!r}" for k, v in saved.items() if v != now[k]) or None


def _dist_info() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment (1 process otherwise)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _all_agree(flag: bool, world: int) -> bool:
    """Rank 0's decision, shared with every rank (so no rank waits alone in an all-reduce)."""
    if world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.broadcast(t, src=0)
    return bool(t.item())


def _lr_at(step: int, tc: TrainConfig) -> float:
    """Linear warm-up then cosine decay to 10%."""
    if step < tc.warmup:
        return tc.lr * (step + 1) / tc.warmup
    p = min(1.0, (step - tc.warmup) / max(1, tc.max_steps - tc.warmup))
    return tc.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * p)))


def _batch(dataset, step: int, tc: TrainConfig, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch of a step is a pure function of (seed, rank, step): resume repeats nothing.
    -> (frames [B, 3, 3, S, S], frame times t [B]; 0.5 for even triplets)."""
    rng = np.random.default_rng([tc.seed, rank, step])
    idx = rng.integers(0, len(dataset), size=tc.batch_size)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(step)
    items = [dataset[int(i)] for i in idx]
    items = [it if isinstance(it, tuple) else (it, 0.5) for it in items]
    return torch.stack([f for f, _ in items]), torch.tensor([t for _, t in items], dtype=torch.float32)


def _step_seed(seed: int, rank: int, step: int) -> int:
    """A torch seed per (seed, rank, step): exact resume, different randomness on every rank."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def _make_objective(tc: TrainConfig, device: torch.device):
    from vfi_cli.training.objectives import LDMObjective, VQGANObjective

    try:
        cfg = preset(tc.preset)
    except KeyError as e:
        raise DataError(str(e.args[0])) from None
    if not tc.align:  # the decoder as v1/v2 ran it: every run-time setting at its plain default
        plain = VQGANConfig()
        cfg = replace(cfg, vqgan=replace(cfg.vqgan, **plain.settings()))
    return (VQGANObjective if tc.kind == "vqgan" else LDMObjective)(cfg, tc, device)


class _StopRequest:
    """Set by the first SIGINT/SIGTERM (the loop saves at the end of the current step); a second one
    raises KeyboardInterrupt at once."""

    def __init__(self, say) -> None:
        self.signal: str | None = None
        self._say = say

    def __call__(self, signum: int, frame: object) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        self._say(f"{self.signal}: saving a checkpoint after this step (press Ctrl-C again to quit without saving)")


@contextmanager
def _stop_on_signals(request: _StopRequest):
    """Route SIGINT/SIGTERM to `request` while training (main thread only; restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _remove_if_empty(out: Path) -> None:
    """Delete `out` if this run created it and left nothing in it."""
    try:
        out.rmdir()  # only succeeds when empty
    except OSError:
        pass


def _save(objective, ema: dict, step: int, tc: TrainConfig, optimizers: dict, extra: dict) -> None:
    out = Path(tc.out)
    meta = {"step": step, "training": dataclasses.asdict(tc)}
    if objective.kind == "ldm":
        meta["latent_scale"] = objective.cfg.latent_scale
    objective.save(out, ema, meta)
    state = {
        "step": step, "train_config": dataclasses.asdict(tc),
        "net": objective.net.state_dict(), "ema": ema,
        "aux": {k: m.state_dict() for k, m in objective.aux_modules().items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        **extra,
    }
    tmp = out / f".{STATE}.tmp"
    try:
        torch.save(state, tmp)
        os.replace(tmp, out / STATE)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def train(tc: TrainConfig, console: Console | None = None) -> Path:
    """Run (or resume) a training job; returns the output model directory.

    The first SIGINT/SIGTERM finishes the current step, saves a checkpoint (atomically) and
    raises Interrupted; a second one raises Interrupted at once without saving.
    """
    rank, local_rank, world = _dist_info()
    use_cuda = torch.cuda.is_available()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    console = console or Console(stderr=True)
    def log(message: str, **_: object) -> None:  # plain text: paths may contain [brackets]
        if rank == 0:
            console.print(message, markup=False, highlight=False, soft_wrap=True)

    out = Path(tc.out)
    created = not out.exists()
    if rank == 0:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"cannot create --out {out}: {e.strerror}") from None
    try:
        return _train(tc, out, console, log, rank, local_rank, world, device, use_cuda)
    finally:
        if created and rank == 0:
            _remove_if_empty(out)  # a run that failed or stopped before saving leaves no empty directory


def _train(tc: TrainConfig, out: Path, console: Console, log, rank: int, local_rank: int, world: int,
           device: torch.device, use_cuda: bool) -> Path:
    """The body of `train` once OUT exists (which it removes again if this leaves it empty)."""
    from vfi_cli.training.data import build_dataset

    torch.manual_seed(tc.seed + rank)
    np.random.seed(tc.seed + rank)
    dataset = build_dataset([Path(p) if p != "synthetic" else p for p in tc.data], crop=tc.crop,
                            strides=tc.strides, max_frames_per_video=tc.max_frames_per_video,
                            max_side=tc.max_side, seed=tc.seed, pan=tc.pan, spans=tc.spans)
    if len(dataset) == 0:
        raise DataError("no usable training triplets in " + ", ".join(tc.data))
    log(f"data: {dataset.describe() if hasattr(dataset, 'describe') else len(dataset)}")

    objective = _make_objective(tc, device)
    if getattr(objective, "warm_started", None):
        log(f"warm start: {objective.warm_started} tensors copied from {tc.warm_start}")
    net = objective.net
    params = [p for p in net.parameters() if p.requires_grad]
    optimizers = {"net": torch.optim.AdamW(params, lr=tc.lr, betas=(0.9, 0.99), weight_decay=0.0)}
    for name, module in objective.aux_modules().items():
        optimizers[name] = torch.optim.AdamW(module.parameters(), lr=tc.lr, betas=(0.5, 0.9))
    ema = {k: v.detach().clone() for k, v in net.state_dict().items()}
    trainable = {k for k, p in net.named_parameters() if p.requires_grad}
    step = 0

    state_file = out / STATE
    if state_file.exists():
        state = torch.load(state_file, map_location=device, weights_only=False)
        saved = state["train_config"]
        for key, default in (("kind", None), ("preset", None), ("vqgan_dir", None), ("align", True)):
            if saved.get(key, default) != getattr(tc, key):
                raise TrainingError(f"{state_file} was trained with {key}={saved.get(key)!r}, not "
                                    f"{getattr(tc, key)!r}; use another --out or --restart")
        changed = _changed_settings(out, objective.cfg.vqgan) if objective.kind == "vqgan" else None
        if changed:
            raise TrainingError(f"{out} was trained with the decoder settings {changed}; resume with the same "
                                f"--init and --decoder-settings, or use another --out or --restart")
        net.load_state_dict(state["net"])
        ema = state["ema"]
        for k, m in objective.aux_modules().items():
            m.load_state_dict(state["aux"][k])
        for k, o in optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        if "latent_scale" in state:
            objective.cfg = dataclasses.replace(objective.cfg, latent_scale=state["latent_scale"])
        step = state["step"]
        log(f"resumed {out} at step {step}")
    elif objective.kind == "ldm" and not objective.initialised:
        calib = dataclasses.replace(tc, batch_size=max(16, tc.batch_size))
        frames, times = _batch(dataset, 0, calib, rank=0)
        scale = objective.calibrate(frames.to(device), times.to(device))  # same on every rank
        log(f"latent scale {scale}")

    wrapped = (DistributedDataParallel(net, device_ids=[local_rank] if use_cuda else None)
               if world > 1 else net)
    extra = lambda: {"latent_scale": objective.cfg.latent_scale} if objective.kind == "ldm" else {}  # noqa: E731
    start, last_log = time.time(), {}
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("{task.fields[it_s]:.2f} it/s"), TimeElapsedColumn(), TimeRemainingColumn(),
                        TextColumn("{task.fields[logs]}"), console=console, disable=rank != 0)
    first_step = step
    stop = _StopRequest(log)
    with progress, _stop_on_signals(stop):
        task = progress.add_task(f"train-{tc.kind}", total=tc.max_steps, completed=step, it_s=0.0, logs="")
        try:
            while step < tc.max_steps:
                if _all_agree(stop.signal is not None, world):
                    break
                if tc.max_minutes is not None and _all_agree(time.time() - start > tc.max_minutes * 60, world):
                    log(f"time budget of {tc.max_minutes} min reached")
                    break
                net.train()
                torch.manual_seed(_step_seed(tc.seed, rank, step))  # dropout, t, noise: f(seed, rank, step)
                frames, times = _batch(dataset, step, tc, rank)
                batch, times = frames.to(device), times.to(device)
                lr = _lr_at(step, tc)
                for o in optimizers.values():
                    for g in o.param_groups:
                        g["lr"] = lr
                loss, logs = objective.loss(batch, times, step, wrapped)
                if not torch.isfinite(loss):
                    raise TrainingError(f"loss became {loss.item()} at step {step} ({logs}); "
                                        f"resume from the last checkpoint with a lower --lr")
                optimizers["net"].zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizers["net"].step()
                d_loss = objective.disc_loss(step)
                if d_loss is not None:
                    optimizers["disc"].zero_grad(set_to_none=True)
                    d_loss.backward()
                    optimizers["disc"].step()
                    logs["disc"] = float(d_loss)
                objective.after_step(step, batch, times)
                with torch.no_grad():
                    decay = min(tc.ema_decay, (1 + step) / (10 + step))
                    for k, v in net.state_dict().items():
                        if k in trainable:  # frozen tensors are copied: an EMA of a constant drifts
                            ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
                        else:
                            ema[k].copy_(v)
                step += 1
                last_log = logs
                rate = (step - first_step) / max(1e-9, time.time() - start)
                text = " ".join(f"{k}={v:.4g}" for k, v in logs.items())
                progress.update(task, completed=step, it_s=rate, logs=text)
                if not console.is_terminal and (step % 25 == 0 or step == first_step + 1):
                    log(f"step {step}/{tc.max_steps} {rate:.2f} it/s lr={lr:.2e} {text}", highlight=False)
                if rank == 0 and (step % tc.ckpt_every == 0 or step == tc.max_steps):
                    _save(objective, ema, step, tc, optimizers, extra())
        except KeyboardInterrupt:  # a second Ctrl-C: no save (it could catch a half-applied step)
            raise Interrupted(_resume_hint(out, "interrupted again before saving")) from None
    if stop.signal is not None:
        if rank == 0 and step > first_step:
            _save(objective, ema, step, tc, optimizers, extra())  # the step is complete: exact resume
        if world > 1:
            dist.barrier()
        raise Interrupted(_resume_hint(out, f"{stop.signal} at step {step}"))
    if rank == 0 and (step % tc.ckpt_every != 0 and step != tc.max_steps or not (out / "config.json").exists()):
        _save(objective, ema, step, tc, optimizers, extra())
    if world > 1:
        dist.barrier()
    if last_log:
        log(f"done: step {step}, last losses " + " ".join(f"{k}={v:.4g}" for k, v in last_log.items()))
    else:
        log(f"done: step {step} (already reached --max-steps {tc.max_steps}; nothing trained)")
    return out


def _resume_hint(out: Path, what: str) -> str:
    """The interrupt message: what was saved in OUT and whether re-running resumes."""
    state = out / STATE
    if state.exists():
        step = torch.load(state, map_location="cpu", weights_only=False)["step"]
        return f"{what}; checkpoint at step {step} saved in {out}; re-run the same command to resume"
    return f"{what}; nothing was saved yet (no step finished), so there is nothing to resume"
