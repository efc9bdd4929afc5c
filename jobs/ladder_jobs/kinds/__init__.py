"""Registry of job kinds.

KINDS maps a kind name to its module path; modules are imported only when used, so a kind
that needs torch does not break `synthetic` (or `kinds`) on a machine without it.

A kind module (or package: kinds/<kind>/__init__.py, with model.py / train.py beside it)
exposes:
    HELP: str                      one line for `python -m ladder_jobs kinds`
    Config: type[KindConfig]       a dataclass: every config key with its default and range rules
                                   (see ladder_jobs.config); its defaults are the `kinds --json` declaration
    PRESETS: dict[str, dict]       preset name -> overrides
    run(config: dict, ctx) -> None trains, logs, checkpoints, ends with ctx.report_result(...)
A kind may instead declare DEFAULTS (a flat dict) and an optional validate(config) raising
ConfigError; config.resolve_kind accepts both.
Keep `import torch` inside run() / train.py so HELP, Config and PRESETS load without it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

KINDS: dict[str, str] = {
    "synthetic": "ladder_jobs.kinds.synthetic",
    "ssl": "ladder_jobs.kinds.ssl",
    "ttt": "ladder_jobs.kinds.ttt",
    "video": "ladder_jobs.kinds.video",
    "rlhf": "ladder_jobs.kinds.rlhf",
    "instaaug": "ladder_jobs.kinds.instaaug",
    "clip": "ladder_jobs.kinds.clip",
    # (torch-based kinds land here as subpackages)
}


class UnknownKind(LookupError):
    pass


def get_kind(name: str) -> ModuleType:
    """Import and return a kind's module. Raises UnknownKind; ImportError if a dependency is missing."""
    if name not in KINDS:
        raise UnknownKind(f"unknown kind '{name}' (known: {', '.join(sorted(KINDS))})")
    return importlib.import_module(KINDS[name])
