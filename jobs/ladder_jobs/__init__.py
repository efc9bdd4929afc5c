"""Ladder job package: runs one benchmark trial and reports to the Ladder orchestrator.

Entry point: `python -m ladder_jobs run --kind KIND --config FILE` (see cli.py).
Your own script: `run = ladder_jobs.init()` ... `run.finish({...})` (see sdk.py).
The runtime uses the standard library only; torch-based kinds import torch lazily.
"""

__version__ = "0.1.0"

# Exit codes are the contract with the executor (see README.md, "Job protocol").
EXIT_OK = 0  # success, and only after the final result was recorded
EXIT_ERROR = 1  # uncaught exception: retryable
EXIT_BAD_CONFIG = 2  # bad config / bad invocation: never retried
EXIT_STOPPED = 143  # 128 + SIGTERM: stopped on request after checkpointing; retryable

# The SDK for scripts; after the constants above, which it imports.
from ladder_jobs.sdk import Run, init, torch_checkpoints  # noqa: E402

__all__ = ["Run", "init", "torch_checkpoints", "EXIT_OK", "EXIT_ERROR", "EXIT_BAD_CONFIG", "EXIT_STOPPED"]
