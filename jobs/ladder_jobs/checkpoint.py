"""Checkpoints: atomic, numbered by step, newest KEEP kept.

Files are LADDER_CHECKPOINT_DIR/ckpt-{step:08d}{suffix}. JSON by default; a kind that holds
tensors makes its own store with suffix=".pt", save=torch.save-like, load=torch.load-like:

    store = CheckpointStore(dir, suffix=".pt",
                            save=lambda state, f: torch.save(state, f),
                            load=lambda f: torch.load(f, map_location="cpu"))

save(state, f) writes to a binary file object, load(f) reads one back. Writes go to a temp
file and os.replace, so a kill mid-save leaves the previous checkpoint intact. Keeping two
means a checkpoint that turns out unreadable still leaves one to fall back to.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, BinaryIO, Callable

from ladder_jobs.fsutil import atomic_write, dumps_json
from ladder_jobs.protocol import read_env

KEEP = 2  # checkpoints kept on disk (newest first)

SaveFn = Callable[[Any, BinaryIO], None]
LoadFn = Callable[[BinaryIO], Any]


def _json_save(state: Any, f: BinaryIO) -> None:
    f.write(dumps_json(state))


def _json_load(f: BinaryIO) -> Any:
    return json.loads(f.read().decode("utf-8"))


class CheckpointStore:
    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        keep: int = KEEP,
        suffix: str = ".json",
        save: SaveFn = _json_save,
        load: LoadFn = _json_load,
    ):
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.directory = Path(directory)
        self.keep = keep
        self.suffix = suffix
        self._save = save
        self._load = load
        self._pattern = re.compile(r"^ckpt-(\d{8,})" + re.escape(suffix) + r"$")

    def path_for(self, step: int) -> Path:
        return self.directory / f"ckpt-{step:08d}{self.suffix}"

    def list(self) -> list[tuple[int, Path]]:
        """(step, path) of the checkpoints on disk, newest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for entry in self.directory.iterdir():
            m = self._pattern.match(entry.name)
            if m:
                found.append((int(m.group(1)), entry))
        return sorted(found, reverse=True)

    def save(self, state: Any, step: int) -> Path:
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"checkpoint step must be an int >= 0, got {step!r}")
        path = self.path_for(step)
        atomic_write(path, lambda f: self._save(state, f))
        for _, old in self.list()[self.keep :]:
            try:
                old.unlink()
            except FileNotFoundError:
                pass
        return path

    def load_latest(self) -> Any | None:
        """The newest readable checkpoint, or None when there is none."""
        for step, path in self.list():
            try:
                with open(path, "rb") as f:
                    return self._load(f)
            except Exception as e:  # corrupt or truncated: fall back to the previous one
                print(f"ladder_jobs: skipping unreadable checkpoint {path.name}: {e}", file=sys.stderr)
        return None


def _default_store() -> CheckpointStore:
    return CheckpointStore(read_env().checkpoint_dir)


def save_checkpoint(state: dict, step: int) -> Path:
    """Save state as JSON into LADDER_CHECKPOINT_DIR (see CheckpointStore for other formats)."""
    return _default_store().save(state, step)


def load_latest_checkpoint() -> dict | None:
    return _default_store().load_latest()
