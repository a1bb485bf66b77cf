"""CLI details: --help wording, labelled progress, output-path checks before any work, stale temp files."""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import click
import typer
from rich.console import Console
from typer.testing import CliRunner

from clips import make_clip
from vfi_cli.cli import app
from vfi_cli.progress import DoublingProgress
from vfi_cli.media.tempfiles import cleanup_stale_temps, temp_path

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_help_describes_every_option_without_python_types():
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                assert param.help, f"{name} {param.opts} has no description"
        text = runner.invoke(app, [name, "--help"], terminal_width=200).output
        for bad in ("<str>", "<path>", "<list[", "<int", "<float", "<integer", "<text>"):
            assert bad not in text, (name, bad, text)
    text = runner.invoke(app, ["double", "--help"], terminal_width=200).output
    assert "ultrafast|superfast" in text and "auto|fp32|bf16|fp16" in text and "--allow-damaged" in text


def test_progress_is_labelled():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with DoublingProgress(console, Fraction(30000, 1001), 2) as progress:
        progress._progress.refresh()
        progress.update(3, 10)
        progress._progress.refresh()
    text = out.getvalue()
    assert "doubling 29.97 -> 59.94 fps" in text and "starting" in text
    assert "input frames 3/10" in text and "input frames/s" in text and "ETA" in text and "0/?" not in text


def test_output_path_problems_are_told_apart_before_decoding(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=3)
    (tmp_path / "file.txt").write_text("x")
    res = run("double", src, tmp_path / "file.txt" / "o.mkv", "--weights", tiny_weights)
    assert res.exit_code == 1 and "file.txt is a file, not a directory" in res.output, res.output
    res = run("double", src, tmp_path / "nodir" / "o.mkv", "--weights", tiny_weights)
    assert res.exit_code == 1 and "directory" in res.output and "does not exist" in res.output, res.output
    if Path("/proc/self").is_dir():  # writable by mode for root, but nothing can be created there
        res = run("double", src, "/proc/o.mkv", "--weights", tiny_weights)
        assert res.exit_code == 1 and res.output.startswith("error: /proc/o.mkv: cannot write in /proc"), res.output
    res = run("double", src, tmp_path / "o.mkv", "--weights", tiny_weights, "--preset", "fastest")
    assert res.exit_code == 2 and "ultrafast" in res.output  # refused before x264 sees it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "in.mkv"]


def test_stale_temp_files_of_dead_runs_are_removed(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=3)
    out = tmp_path / "o.mkv"
    stale = temp_path(out, _dead_pid())
    alive = temp_path(out, os.getppid())  # a running process: its write may be in progress
    other = temp_path(tmp_path / "other.mkv", _dead_pid())  # another output's: not ours to judge
    for p in (stale, alive, other):
        p.write_bytes(b"partial")
    assert stale.name.startswith(".o.vfi-") and stale.name.endswith(".tmp.mkv")
    res = run("double", src, out, "--weights", tiny_weights, "-q", "--lossless")
    assert res.exit_code == 0, res.output
    assert not stale.exists() and alive.exists() and other.exists() and out.exists()
    assert cleanup_stale_temps(out) == []
