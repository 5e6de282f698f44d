"""The soak's shared wall clock: an offset every stack process adds to CLOCK_REALTIME (clock.c, LD_PRELOAD).

The driver owns the offset file; `environment()` is what each child needs to see it. Real time still runs
between steps, so `now()` is the real wall clock plus the current offset; `advance_to` only moves forward.
"""

from __future__ import annotations

import mmap
import os
import shutil
import struct
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

SOURCE = Path(__file__).with_name("clock.c")
OFFSET_FORMAT = "<q"  # nanoseconds, little-endian, as clock.c reads it


class SoakClockError(RuntimeError):
    pass


def build_library(out_dir: Path) -> Path:
    """Compile clock.c into out_dir (needs gcc: apt-get install gcc), or reuse a build newer than the source."""
    library = out_dir / "libsoakclock.so"
    if library.exists() and library.stat().st_mtime >= SOURCE.stat().st_mtime:
        return library
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise SoakClockError("the soak's clock needs a C compiler: apt-get install gcc")
    out_dir.mkdir(parents=True, exist_ok=True)
    built = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(library), str(SOURCE),
                            "-ldl"], capture_output=True, text=True, check=False)  # fmt: skip
    if built.returncode:
        raise SoakClockError(f"could not build {library} from {SOURCE}:\n{built.stderr}")
    return library


class SteppedClock:
    """The offset file and the library that reads it; `now()` is what every stack process reads as the time."""

    def __init__(self, out_dir: Path) -> None:
        self.library = build_library(out_dir)
        self.offset_file = out_dir / "clock.offset"
        self.offset_file.write_bytes(struct.pack(OFFSET_FORMAT, 0))
        fd = os.open(self.offset_file, os.O_RDWR)
        try:
            self._map = mmap.mmap(fd, struct.calcsize(OFFSET_FORMAT))
        finally:
            os.close(fd)
        self._offset_ns = 0

    def environment(self) -> dict[str, str]:
        return {"LD_PRELOAD": str(self.library), "SOAK_CLOCK_FILE": str(self.offset_file)}

    @property
    def offset(self) -> timedelta:
        return timedelta(microseconds=self._offset_ns // 1000)

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time_ns() / 1e9 + self._offset_ns / 1e9, UTC)

    def advance_to(self, moment: datetime) -> timedelta:
        """Step the shared clock forward to `moment` (never back); returns the step taken."""
        step = moment - self.now()
        if step <= timedelta(0):
            return timedelta(0)
        self._offset_ns += int(step.total_seconds() * 1e9)
        struct.pack_into(OFFSET_FORMAT, self._map, 0, self._offset_ns)
        return step

    def close(self) -> None:
        self._map.close()
