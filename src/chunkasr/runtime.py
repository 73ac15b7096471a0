"""Process-level tuning that the command line applies to its own process.

glibc returns every large freed block (above a dynamic threshold, 128 KiB to 32 MiB) to the
kernel and maps it again on the next allocation, so a forward pass that allocates and frees
the same activation sizes step after step pays a page fault per 4 KiB each time (measured on
the CPU benchmark: ~270,000 minor faults and ~0.6 s of system time per 5 minutes of audio).
Keeping freed memory in the process removes that (bf16 5 min: 2.96 -> 2.32 s warm). Freed
blocks are kept rather than returned, so peak RSS can grow somewhat (CPU benchmark: 3.27 vs
3.26 GiB bf16, 3.70 vs 3.31 GiB fp32, docs/benchmarks.md). Library users who want it call
:func:`tune_allocator` themselves: a library should not change its host process's allocator on
import.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["tune_allocator"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP = 1 << 30  # bytes


def tune_allocator() -> bool:
    """Keep freed memory for reuse (glibc only). Returns True when applied.

    ``CHUNKASR_MALLOC=system`` leaves the allocator alone.
    """
    if not sys.platform.startswith("linux") or os.environ.get("CHUNKASR_MALLOC") == "system":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP))
