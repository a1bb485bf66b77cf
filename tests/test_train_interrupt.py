"""Training interrupts save at the current step; failed runs leave no empty --out; the crop adapts to the data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from clips import make_clip
from vfi_cli.training import loop as train_mod
from vfi_cli.cli import app

runner = CliRunner()
TINY = ["--preset", "tiny", "--batch-size", "2"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("data") / "clip.mkv", n_frames=12, width=48, height=40)


def _step(out: Path) -> int:
    return torch.load(out / train_mod.STATE, map_location="cpu", weights_only=False)["step"]


def test_sigint_saves_the_current_step_and_resume_continues(tmp_path, clip):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "vfi_cli", "train-vqgan", "--data", str(clip), "--out", str(out),
           "--max-steps", "100000", "--ckpt-every", "100000", "--crop", "32", *TINY]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = []
    for line in proc.stderr:  # "step 1/100000 ..." is logged after the first step (not a terminal)
        lines.append(line)
        if line.startswith("step 1/"):
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, "".join(lines) + rest
    assert "Traceback" not in rest
    step = _step(out)
    assert step >= 1 and f"SIGINT at step {step}; checkpoint at step {step} saved in {out}" in rest, rest
    assert "re-run the same command to resume" in rest
    assert not list(out.glob(".*.tmp"))
    res = run("train-vqgan", "--data", clip, "--out", out, "--max-steps", step + 1, "--crop", "32", *TINY)
    assert res.exit_code == 0 and f"resumed {out} at step {step}" in res.output, res.output
    res = run("train-vqgan", "--data", clip, "--out", out, "--max-steps", step + 1, "--crop", "32", *TINY)
    assert res.exit_code == 0 and "nothing trained" in res.output and "last losses \n" not in res.output


def test_interrupt_before_any_step_saves_nothing_and_leaves_no_directory(tmp_path, clip, monkeypatch):
    real_init = train_mod._StopRequest.__init__

    def already_stopped(self, say):
        real_init(self, say)
        self.signal = "SIGTERM"

    monkeypatch.setattr(train_mod._StopRequest, "__init__", already_stopped)
    out = tmp_path / "new" / "run"
    res = run("train-vqgan", "--data", clip, "--out", out, "--max-steps", "5", "--crop", "32", *TINY)
    assert res.exit_code == 130, res.output
    assert "SIGTERM at step 0; nothing was saved yet" in res.output and "nothing to resume" in res.output
    assert not out.exists()


def test_second_ctrl_c_quits_at_once(tmp_path, clip, monkeypatch):
    real_lr = train_mod._lr_at

    def two_signals(step, tc):
        if step == 1:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return real_lr(step, tc)

    monkeypatch.setattr(train_mod, "_lr_at", two_signals)
    out = tmp_path / "run"
    res = run("train-vqgan", "--data", clip, "--out", out, "--max-steps", "5", "--crop", "32", *TINY)
    assert res.exit_code == 130 and "interrupted again before saving" in res.output, res.output
    assert "nothing to resume" in res.output and not out.exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_failed_run_leaves_no_empty_directory_and_crop_adapts(tmp_path, clip):
    out = tmp_path / "o"
    res = run("train-vqgan", "--data", clip, "--out", out, "--max-steps", "1", "--crop", "64", *TINY)
    assert res.exit_code == 1 and "crop 64 larger" in res.output and not out.exists()
    ae = tmp_path / "ae"
    res = run("train-vqgan", "--data", clip, "--out", ae, "--max-steps", "1", *TINY)
    assert res.exit_code == 0 and "crop 32 px (the default 128 does not fit clip.mkv, 48x40" in res.output, res.output
    res = run("train-ldm", "--data", clip, "--vqgan", ae, "--out", tmp_path / "m", "--max-steps", "1", *TINY)
    assert res.exit_code == 0 and "crop 32 px (the default 256 does not fit" in res.output, res.output
    res = run("train-ldm", "--data", "synthetic:4", "--vqgan", ae, "--out", tmp_path / "m2", "--max-steps", "1",
              *TINY)
    assert res.exit_code == 0 and "crop 256 px (the default)" in res.output, res.output
