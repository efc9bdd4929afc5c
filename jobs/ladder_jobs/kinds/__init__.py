"""Registry of job kinds.

KINDS maps a kind name to its module path; modules are imported only when used, so a kind
that needs torch does not break `synthetic` (or `kinds`) on a machine without it.

A kind module (or package: kinds/<kind>/__init__.py, with model.py / train.py beside it)
exposes:
    HELP: str                      one line for `python -m ladder_jobs kinds`
    DEFAULTS: dict                 every config key with its default; the default's type is the key's type
    PRESETS: dict[str, dict]       preset name -> overrides
    run(config: dict, ctx) -> None trains, logs, checkpoints, ends with ctx.report_result(...)
    validate(config) -> None       optional: range checks, raise ConfigError (exit 2)
Keep `import torch` inside run() / train.py so HELP, DEFAULTS and PRESETS load without it.
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
    # (torch-based kinds land here as subpackages)
}


class UnknownKind(LookupError):
    pass


def get_kind(name: str) -> ModuleType:
    """Import and return a kind's module. Raises UnknownKind; ImportError if a dependency is missing."""
    if name not in KINDS:
        raise UnknownKind(f"unknown kind '{name}' (known: {', '.join(sorted(KINDS))})")
    return importlib.import_module(KINDS[name])
