"""The SDK for your own script ("bring your own job"): a few lines give it the guarantees of the
built-in kinds, through the same metrics client, checkpoint store and stop flag they use.

    import ladder_jobs as ladder
    run = ladder.init(config={"lr": 0.1, "steps": 100})   # defaults for a run outside Ladder
    state = run.load_checkpoint()                          # None on a first attempt
    for step in range(run.start_step, run.config["steps"]):
        ...
        run.log({"loss": loss}, step=step)
        if run.should_stop():                              # SIGTERM: checkpoint, exit for a retry
            run.save_checkpoint(state, step); run.stop()
    run.finish({"val_loss": v})

`init` reads the LADDER_* environment (protocol.py) and the trial's config from the JSON file
in LADDER_CONFIG; without LADDER_INGEST_URL it runs offline (metrics.jsonl / result.json in
LADDER_OUTPUT_DIR). Exit codes follow the protocol: 0 after `finish`, 2 for a bad config or
environment (`init` exits with it), 143 after `stop` or a second SIGTERM, 1 for an uncaught error.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from typing import Any, Mapping, NoReturn

from ladder_jobs import EXIT_BAD_CONFIG, EXIT_ERROR, EXIT_OK, EXIT_STOPPED, signals
from ladder_jobs.checkpoint import CheckpointStore
from ladder_jobs.config import ConfigError
from ladder_jobs.context import JobContext
from ladder_jobs.metrics import MetricsClient
from ladder_jobs.protocol import ProtocolError, read_env

# The kind recorded in checkpoints and results of a script (the sweep's kind, "command").
COMMAND_KIND = "command"
CONFIG_ENV = "LADDER_CONFIG"
MAX_CONFIG_BYTES = 16 * 1024 * 1024
# As the CLI: after a failure, spend at most this long delivering buffered points.
CLOSE_AFTER_FAILURE_S = 10.0


def _fail(code: int, message: str) -> NoReturn:
    # One line: the executor shows the log's last lines as the failure reason.
    print(f"ladder: {message}".replace("\n", " "), file=sys.stderr, flush=True)
    raise SystemExit(code)


def _read_config(path: str) -> dict:
    try:
        size = os.path.getsize(path)
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{CONFIG_ENV} file {path} is {size} bytes; the limit is {MAX_CONFIG_BYTES}")
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read {CONFIG_ENV} file {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ConfigError(f"{CONFIG_ENV} file {path} is not JSON: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{CONFIG_ENV} file {path} must hold a JSON object, got {type(config).__name__}")
    return config


class Run:
    """One attempt of one trial, as seen by a script. Made by `init`."""

    def __init__(self, ctx: JobContext):
        self._ctx = ctx
        self._done = False
        self._stopped = False
        self.start_step = 0

    @property
    def config(self) -> dict:
        """The trial's resolved config (`seed` included), or the defaults given to `init` offline."""
        return self._ctx.config

    @property
    def attempt(self) -> int:
        return self._ctx.attempt

    @property
    def trial_id(self) -> str | None:
        return self._ctx.env.trial_id

    @property
    def online(self) -> bool:
        return self._ctx.env.online

    def log(self, values: Mapping[str, Any], step: int) -> None:
        """Metric points at `step` (an int >= 0). Batched and retried; a repeat of (name, step) is
        stored once, so a resumed attempt may log its steps again."""
        self._ctx.log_many(step, values)

    def should_stop(self) -> bool:
        """True once SIGTERM/SIGINT arrived: save a checkpoint and call `stop()` at a step boundary."""
        return signals.stop_requested()

    def use_checkpoints(self, store: CheckpointStore) -> None:
        """Another checkpoint format, e.g. `torch_checkpoints(run)` for tensors (JSON by default)."""
        self._ctx.use_checkpoints(store)

    def save_checkpoint(self, state: Any, step: int) -> None:
        """Points logged so far are delivered first; then `state` is saved atomically for `step`."""
        self._ctx.save_checkpoint(state, step)

    def load_checkpoint(self) -> Any | None:
        """The newest checkpoint's state, or None on a first attempt. Sets `start_step` to the step
        after the checkpointed one. A checkpoint of another config exits 2 (it is not this trial's)."""
        try:
            found = self._ctx.load_checkpoint()
        except ConfigError as e:
            self._abort(EXIT_BAD_CONFIG, f"config error: {e}")
        if found is None:
            return None
        state, step = found
        self.start_step = step + 1
        return state

    def stop(self) -> NoReturn:
        """Flush and exit 143: the executor retries the trial, which resumes from the checkpoint."""
        self._stopped = True
        self._abort(EXIT_STOPPED, f"stopped ({signals.signal_name() or 'on request'}); a retry resumes from the checkpoint")

    def finish(self, metrics: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> None:
        """Record the final result (what the leaderboard and analyses use) and deliver everything.
        Once, at the end; the process then exits 0 when the script returns."""
        if self._done:
            raise RuntimeError("finish() was already called for this run")
        self._ctx.report_result(metrics, meta)
        self._ctx.metrics.close()
        self._done = True

    # -- exits -----------------------------------------------------------------

    def _abort(self, code: int, message: str) -> NoReturn:
        try:
            self._ctx.metrics.close(deadline_s=CLOSE_AFTER_FAILURE_S)
        except Exception as e:
            print(f"ladder: could not flush metrics: {e}", file=sys.stderr, flush=True)
        _fail(code, message)

    def _at_exit(self) -> None:
        if self._done or self._stopped or _crashed:
            return
        # A script that returns without finish() has no result: say so in the log, whose last
        # lines the trial's failure shows (the orchestrator refuses exit 0 without a result).
        print("ladder: the script ended without run.finish(...): no result was recorded", file=sys.stderr, flush=True)


_previous_excepthook = sys.excepthook
_crashed = False


def _excepthook(exc_type, exc, tb) -> None:
    global _crashed
    _crashed = True
    if issubclass(exc_type, signals.Stopped):
        # A second SIGTERM raised Stopped wherever the script was: still a stop, not a crash.
        print(f"ladder: stopped ({exc}); a retry resumes from the checkpoint", file=sys.stderr, flush=True)
        sys.stderr.flush()
        os._exit(EXIT_STOPPED)
    _previous_excepthook(exc_type, exc, tb)


def init(config: Mapping[str, Any] | None = None, *, install_signals: bool = True, **client_options: Any) -> Run:
    """Start reporting for this process. `config` holds defaults for a run outside Ladder; inside
    one, the trial's config (from LADDER_CONFIG) overrides them key by key. A bad LADDER_*
    variable or config file exits 2 (a retry cannot fix it). `client_options` tune the metrics
    client (flush_points, flush_interval_s, retry_deadline_s...), mainly for tests."""
    try:
        env = read_env()
        resolved = dict(config or {})
        path = os.environ.get(CONFIG_ENV)
        if path:
            resolved.update(_read_config(path))
    except ProtocolError as e:
        _fail(EXIT_BAD_CONFIG, f"environment error: {e}")
    except ConfigError as e:
        _fail(EXIT_BAD_CONFIG, f"config error: {e}")
    sys.excepthook = _excepthook
    if install_signals:
        signals.install()
    metrics = MetricsClient(env, **client_options)
    run = Run(JobContext(COMMAND_KIND, resolved, env, metrics))
    # Registered after the client's own atexit hook, so it runs first (atexit is LIFO).
    atexit.register(run._at_exit)
    return run


def torch_checkpoints(run: Run) -> CheckpointStore:
    """A checkpoint store for states holding tensors (torch.save / torch.load); `run.use_checkpoints(...)`."""
    from ladder_jobs.torch_utils import torch_checkpoint_store  # imports torch

    return torch_checkpoint_store(run._ctx.checkpoints.directory)


__all__ = ["Run", "init", "torch_checkpoints", "EXIT_OK", "EXIT_ERROR"]
