"""The environment the executor gives a job (see README.md, "Job protocol").

    LADDER_TRIAL_ID        trial id; names the ingest routes (required when online)
    LADDER_INGEST_URL      base URL of the ingest API; unset or empty -> offline mode
    LADDER_INGEST_TOKEN    bearer token valid for this trial only; never printed
    LADDER_CHECKPOINT_DIR  where checkpoints go     (default ./ladder-output/checkpoints)
    LADDER_OUTPUT_DIR      where offline output goes (default ./ladder-output)
    LADDER_ATTEMPT         1-based attempt number    (default 1)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

DEFAULT_OUTPUT_DIR = "ladder-output"
DEFAULT_CHECKPOINT_DIR = os.path.join(DEFAULT_OUTPUT_DIR, "checkpoints")


class ProtocolError(ValueError):
    """The environment is unusable (a bad LADDER_* value). Exit code 2: a retry cannot fix it."""


@dataclass(frozen=True)
class JobEnv:
    trial_id: str | None
    ingest_url: str | None
    # repr=False: a repr of the env (in a traceback, a log line) must not leak the token.
    ingest_token: str | None = field(repr=False)
    checkpoint_dir: Path
    output_dir: Path
    attempt: int

    @property
    def online(self) -> bool:
        return bool(self.ingest_url)


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value if value else None  # an empty variable counts as unset


def read_env(environ: Mapping[str, str] | None = None) -> JobEnv:
    environ = os.environ if environ is None else environ
    attempt_text = _get(environ, "LADDER_ATTEMPT")
    try:
        attempt = int(attempt_text) if attempt_text is not None else 1
    except ValueError:
        raise ProtocolError(f"LADDER_ATTEMPT must be an integer, got {attempt_text!r}") from None
    if attempt < 1:
        raise ProtocolError(f"LADDER_ATTEMPT must be >= 1, got {attempt}")
    url = _get(environ, "LADDER_INGEST_URL")
    trial_id = _get(environ, "LADDER_TRIAL_ID")
    if url is not None:
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ProtocolError("LADDER_INGEST_URL must start with http:// or https://")
        if trial_id is None:
            raise ProtocolError("LADDER_TRIAL_ID is required when LADDER_INGEST_URL is set")
    return JobEnv(
        trial_id=trial_id,
        ingest_url=url,
        ingest_token=_get(environ, "LADDER_INGEST_TOKEN"),
        checkpoint_dir=Path(_get(environ, "LADDER_CHECKPOINT_DIR") or DEFAULT_CHECKPOINT_DIR),
        output_dir=Path(_get(environ, "LADDER_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR),
        attempt=attempt,
    )
