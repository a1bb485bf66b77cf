"""What the command line prints on stderr: plain lines, `warning:` and `error:` lines, and the
mapping of every failure (VfiError, Ctrl-C, out of memory, OSError) to one `error:` line and an
exit code (1; 130 for Ctrl-C; the error's own code, e.g. 2 for usage)."""

from __future__ import annotations

import functools

import typer
from rich.console import Console
from rich.text import Text

from vfi_cli.errors import VfiError

err = Console(stderr=True)


def say(message: str) -> None:
    """One plain line on stderr (paths may contain [brackets]: no markup)."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> None:
    err.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or "out of memory" in str(e) or "can't allocate memory" in str(e)


def handles_errors(fn):
    """Map VfiError (and Ctrl-C) to one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VfiError as e:
            fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except (MemoryError, RuntimeError) as e:
            if not _is_oom(e):
                raise
            fail("out of memory: lower --batch-size")
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            fail(f"{where}{e.strerror or e}")

    return wrapper


def warn(message: str) -> None:
    """One `warning:` line on stderr."""
    err.print(Text.assemble(("warning:", "bold yellow"), " ", message), highlight=False, soft_wrap=True)
