"""JobContext: what a kind's run(config, ctx) gets.

It ties metrics, checkpoints and the stop flag together so every kind gets the ordering
right: a checkpoint is written only after the points logged before it were delivered, so a
resumed run never leaves a hole in a curve; the result carries the resolved config.
"""

from __future__ import annotations

import datetime as _dt
import platform
import socket
import sys
import time
from typing import Any, Mapping, NoReturn

from ladder_jobs import __version__, signals
from ladder_jobs.checkpoint import CheckpointStore
from ladder_jobs.config import ConfigError
from ladder_jobs.metrics import MetricsClient
from ladder_jobs.protocol import JobEnv

CHECKPOINT_FORMAT = 1  # bump when the envelope below changes shape


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class JobContext:
    def __init__(
        self,
        kind: str,
        config: dict,
        env: JobEnv,
        metrics: MetricsClient,
        checkpoints: CheckpointStore | None = None,
        preset: str | None = None,
    ):
        self.kind = kind
        self.config = config
        self.env = env
        self.metrics = metrics
        self.checkpoints = checkpoints or CheckpointStore(env.checkpoint_dir)
        self.preset = preset
        self.resumed_from_step: int | None = None
        self._started_at = _now_iso()
        self._t0 = time.monotonic()

    @property
    def attempt(self) -> int:
        return self.env.attempt

    # -- metrics ---------------------------------------------------------------

    def log(self, name: str, step: int, value: float) -> None:
        self.metrics.log(name, step, value)

    def log_many(self, step: int, values: Mapping[str, Any]) -> None:
        self.metrics.log_many(step, values)

    # -- stop flag -------------------------------------------------------------

    def stop_requested(self) -> bool:
        return signals.stop_requested()

    def stop(self, state: Any, step: int) -> NoReturn:
        """Checkpoint and unwind with Stopped (the CLI exits 143). Call at a step boundary."""
        self.save_checkpoint(state, step)
        raise signals.Stopped(signals.signal_name() or "stop requested")

    # -- checkpoints -----------------------------------------------------------

    def use_checkpoints(self, store: CheckpointStore) -> None:
        """Swap in a store with another format (e.g. torch.save with suffix .pt)."""
        self.checkpoints = store

    def save_checkpoint(self, state: Any, step: int) -> None:
        # Points first: once the checkpoint exists a retry starts after `step`, so anything
        # logged up to it must already be delivered.
        self.metrics.flush()
        envelope = {
            "format": CHECKPOINT_FORMAT,
            "kind": self.kind,
            "step": step,
            "config": self.config,  # the resolved config, saved with every checkpoint
            "attempt": self.attempt,
            "saved_at": _now_iso(),
            "state": state,
        }
        self.checkpoints.save(envelope, step)

    def load_checkpoint(self) -> tuple[Any, int] | None:
        """(state, step) of the newest checkpoint, or None for a fresh start."""
        envelope = self.checkpoints.load_latest()
        if envelope is None:
            return None
        if not isinstance(envelope, dict) or envelope.get("format") != CHECKPOINT_FORMAT:
            raise ConfigError(f"checkpoint in {self.checkpoints.directory} has an unknown format")
        if envelope.get("kind") != self.kind or envelope.get("config") != self.config:
            # Resuming with another config would splice two different runs into one curve.
            raise ConfigError(
                f"checkpoint dir {self.checkpoints.directory} holds a checkpoint of another "
                f"kind or config; use an empty LADDER_CHECKPOINT_DIR to start fresh"
            )
        step = int(envelope["step"])
        self.resumed_from_step = step
        print(f"ladder_jobs: resuming {self.kind} from checkpoint at step {step}", file=sys.stderr)
        return envelope["state"], step

    # -- result ----------------------------------------------------------------

    def report_result(self, metrics: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> None:
        """Record the final result (with the resolved config). Required for exit code 0."""
        full_meta = {
            "kind": self.kind,
            "preset": self.preset,
            "trial_id": self.env.trial_id,
            "attempt": self.attempt,
            "resumed_from_step": self.resumed_from_step,
            "started_at": self._started_at,
            "finished_at": _now_iso(),
            "duration_s": round(time.monotonic() - self._t0, 3),
            "hostname": socket.gethostname(),
            "python": platform.python_version(),
            "ladder_jobs_version": __version__,
        }
        full_meta.update(meta or {})
        self.metrics.result(metrics, self.config, full_meta)

    @property
    def result_recorded(self) -> bool:
        return self.metrics.result_recorded
