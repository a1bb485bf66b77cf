"""Process-wide memory allocator settings for long jobs (glibc only; elsewhere nothing happens).

A `vfi double` batch allocates tensors of tens to hundreds of MB and frees them again. glibc
serves anything above its mmap threshold (at most 32 MB) with a fresh mmap and returns it to the
OS on free, so every batch faults every page in again: on a 2-core CPU that was ~17 s of a 50 s
job in system time (10 M minor faults). Here all allocations come from one heap that is never
trimmed, so freed blocks are reused by the next batch of the same shapes:

- M_MMAP_MAX = 0: no allocation is served by mmap (the heap grows instead; glibc still falls
  back to mmap if the heap cannot grow);
- M_TRIM_THRESHOLD = 2 GiB - 1 (mallopt's largest): freed memory is kept for reuse rather than
  handed back;
- M_ARENA_MAX = 1: the decode, encode and torch threads share that heap, so the memory one
  thread frees is there for the others (per-thread arenas cap their heaps at 64 MB and mmap
  the rest).

The process's peak RSS is then about its peak live memory, held until exit (which is what a
job of repeated same-shaped batches needs anyway): benchmarks/speed.py measures both. Set
VFI_MALLOC=system to keep glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # <malloc.h> mallopt parameters
M_MMAP_MAX = -4
M_ARENA_MAX = -8
SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2 ** 31 - 1))

_applied: bool | None = None


def tune() -> bool:
    """Apply the settings once per process; True when they are in force (glibc and not opted out)."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get("VFI_MALLOC", "").lower() == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # glibc only (musl has mallopt as a no-op)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all([mallopt(param, value) == 1 for param, value in SETTINGS])  # 1: accepted
