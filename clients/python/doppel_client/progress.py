"""Progress display: a tqdm bar when tqdm is installed, else one stderr line."""

from __future__ import annotations

import sys
import time
from typing import Optional

try:
    from tqdm import tqdm
except ImportError:  # optional dependency (`pip install doppel-client[progress]`)
    tqdm = None


class Progress:
    """Shows `done` of `total` (`total` may be unknown or change) and a short note.

    Disabled instances do nothing, so callers need no `if`.
    """

    def __init__(self, desc: str, total: Optional[int] = None, enabled: bool = True, unit: str = "it") -> None:
        self._desc, self._total, self._enabled = desc, total, enabled
        self._bar = tqdm(desc=desc, total=total, unit=unit, file=sys.stderr) if enabled and tqdm else None
        self._last_print, self._last_note = 0.0, ""

    def update(self, done: int, total: Optional[int] = None, note: str = "") -> None:
        """Sets the absolute progress."""
        if not self._enabled:
            return
        if total is not None:
            self._total = total
        if self._bar is not None:
            if total is not None and self._bar.total != total:
                self._bar.total = total
            self._bar.update(done - self._bar.n)
            if note:
                self._bar.set_postfix_str(note)
            return
        now = time.monotonic()
        if now - self._last_print >= 0.5 or note != self._last_note or done == self._total:
            self._last_print, self._last_note = now, note
            of = f"/{self._total}" if self._total is not None else ""
            end = "\r" if sys.stderr.isatty() else "\n"
            line = f"{self._desc}: {done}{of} {note}".rstrip()
            print(line.ljust(60) if end == "\r" else line, end=end, file=sys.stderr, flush=True)

    def close(self) -> None:
        """Ends the display (a final newline on a terminal)."""
        if self._bar is not None:
            self._bar.close()
        elif self._enabled and sys.stderr.isatty():
            print(file=sys.stderr, flush=True)
        self._enabled = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
