"""harvester/memory.py: glibc's malloc thresholds, fixed once at start."""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys

import pytest

from harvester import memory

# The child allocates and frees a 4 MiB block (which, as glibc does it by default,
# raises the mmap threshold to 4 MiB), then allocates 2 MiB and says whether that
# block lies in the heap (where it would leave a gap when freed) or in a mapping
# of its own (given back to the system when freed).
CHILD = """
import ctypes, sys
from harvester import memory

def in_heap(buffer):
    address = ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))
    with open("/proc/self/maps") as fh:
        for line in fh:
            if line.rstrip().endswith("[heap]"):
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                if start <= address < end:
                    return True
    return False

if sys.argv[1] == "fixed":
    assert memory.fix_malloc_thresholds()
block = bytearray(4 * 1024 * 1024)
del block
kept = bytearray(2 * 1024 * 1024)
print(in_heap(kept))
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
@pytest.mark.parametrize(("mode", "heap"), [("default", "True"), ("fixed", "False")])
def test_big_blocks_get_their_own_mapping_once_the_thresholds_are_fixed(
    mode: str, heap: str
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == heap


def test_without_mallopt_nothing_is_tuned(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoMallopt:
        def __init__(self, name: object) -> None:
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert memory.fix_malloc_thresholds() is False
