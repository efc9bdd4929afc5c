"""Command line: the executor's entry point.

    python -m ladder_jobs run --kind KIND --config FILE   run one trial (env: see protocol.py)
    python -m ladder_jobs kinds [--json]                  list the kinds
    python -m ladder_jobs config --kind KIND --config FILE  print the resolved config as JSON
    python -m ladder_jobs lc-winrate FILE [--glm G] [--json]  raw / length-controlled win rates of an
                                                          alpaca_eval annotation file

Exit codes (the contract with the executor):
    0    success, only after the final result was recorded
    2    bad config, unknown kind, bad LADDER_* environment: never retried
    143  stopped by SIGTERM/SIGINT after checkpointing: retryable
    1    anything else (uncaught exception, ingest unreachable): retryable
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from types import ModuleType

from ladder_jobs import EXIT_BAD_CONFIG, EXIT_ERROR, EXIT_OK, EXIT_STOPPED, signals
from ladder_jobs.config import ConfigError, kind_tables, load_config_file, resolve_kind
from ladder_jobs.kinds import KINDS, UnknownKind, get_kind
from ladder_jobs.protocol import ProtocolError, read_env

# After a failure, spend at most this long trying to deliver buffered points before exiting:
# the retry will resend them anyway, and a preempted pod has a short grace period.
CLOSE_AFTER_FAILURE_S = 10.0


def _err(message: str) -> None:
    # One line: the executor shows the last stderr line as the failure reason.
    print(message.replace("\n", " "), file=sys.stderr, flush=True)


def _resolve(kind_name: str, config_path: str) -> tuple[ModuleType, dict, str | None]:
    """Kind module, resolved config, preset. Raises UnknownKind or ConfigError."""
    kind = get_kind(kind_name)
    raw = load_config_file(config_path)
    config, preset = resolve_kind(kind_name, kind, raw)
    return kind, config, preset


def cmd_run(args: argparse.Namespace) -> int:
    # Imported here so `kinds` and `config` stay light.
    from ladder_jobs.context import JobContext
    from ladder_jobs.metrics import MetricsClient

    try:
        kind, config, preset = _resolve(args.kind, args.config)
        env = read_env()
    except UnknownKind as e:
        _err(str(e))
        return EXIT_BAD_CONFIG
    except ConfigError as e:
        _err(f"config error: {e}")
        return EXIT_BAD_CONFIG
    except ProtocolError as e:
        _err(f"environment error: {e}")
        return EXIT_BAD_CONFIG
    except ImportError as e:  # a kind whose dependency (torch) this image lacks
        _err(f"kind '{args.kind}' cannot be loaded: {e}")
        return EXIT_ERROR

    signals.install()
    metrics = MetricsClient(env)
    ctx = JobContext(args.kind, config, env, metrics, preset=preset)
    try:
        kind.run(config, ctx)
        if not ctx.result_recorded:
            raise RuntimeError(f"kind '{args.kind}' returned without recording a result")
        metrics.close()
        return EXIT_OK
    except signals.Stopped as e:
        code, why = EXIT_STOPPED, f"stopped ({e}); checkpointed, retry resumes"
    except ConfigError as e:  # e.g. a checkpoint of another config in the checkpoint dir
        code, why = EXIT_BAD_CONFIG, f"config error: {e}"
    except KeyboardInterrupt:  # a signal before install() or a second SIGINT elsewhere
        code, why = EXIT_STOPPED, "interrupted"
    except Exception as e:
        traceback.print_exc()
        code, why = EXIT_ERROR, f"error: {type(e).__name__}: {e}"
    try:
        metrics.close(deadline_s=CLOSE_AFTER_FAILURE_S)
    except Exception as e:
        _err(f"could not flush metrics: {e}")
    _err(why)
    return code


def cmd_kinds(args: argparse.Namespace) -> int:
    listing = {}
    for name in sorted(KINDS):
        try:
            kind = get_kind(name)
            defaults, presets = kind_tables(kind)
            listing[name] = {"help": kind.HELP, "defaults": defaults, "presets": presets}
        except ImportError as e:  # e.g. torch missing: still list it
            listing[name] = {"help": f"(unavailable: {e})", "defaults": None, "presets": None}
    if args.json:
        print(json.dumps(listing, indent=1, sort_keys=True))
    else:
        width = max(len(n) for n in listing)
        for name, info in listing.items():
            print(f"{name:<{width}}  {info['help']}")
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    try:
        _, config, _ = _resolve(args.kind, args.config)
    except UnknownKind as e:
        _err(str(e))
        return EXIT_BAD_CONFIG
    except ConfigError as e:
        _err(f"config error: {e}")
        return EXIT_BAD_CONFIG
    print(json.dumps(config, indent=1, sort_keys=True))
    return EXIT_OK


def cmd_lc_winrate(args: argparse.Namespace) -> int:
    # Imported here: numpy (and scikit-learn) are needed by this command only.
    from ladder_jobs.kinds.rlhf import DEFAULT_GLM, GLMS
    from ladder_jobs.kinds.rlhf.lc_file import AnnotationError, main as lc_main

    glm = args.glm or DEFAULT_GLM
    if glm not in GLMS:
        _err(f"lc-winrate: --glm must be one of {', '.join(GLMS)}, got {glm!r}")
        return EXIT_BAD_CONFIG
    try:
        print(lc_main(args.file, glm, args.json))
    except (AnnotationError, OSError, UnicodeDecodeError) as e:
        _err(f"lc-winrate: {e}")
        return EXIT_BAD_CONFIG
    except ImportError as e:  # the cross-validated GLMs need scikit-learn
        _err(f"lc-winrate: {e}; the length_controlled_noreg GLM needs only numpy")
        return EXIT_ERROR
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ladder_jobs", description="Run Ladder job kinds.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one trial")
    run.add_argument("--kind", required=True)
    run.add_argument("--config", required=True, help="JSON file: {\"preset\": ..., key: value, ...}")
    run.set_defaults(fn=cmd_run)
    kinds = sub.add_parser("kinds", help="list the job kinds")
    kinds.add_argument("--json", action="store_true", help="also defaults and presets, as JSON")
    kinds.set_defaults(fn=cmd_kinds)
    cfg = sub.add_parser("config", help="print the resolved config as JSON")
    cfg.add_argument("--kind", required=True)
    cfg.add_argument("--config", required=True)
    cfg.set_defaults(fn=cmd_config)
    lc = sub.add_parser("lc-winrate", help="raw and length-controlled win rates of an alpaca_eval annotation file")
    lc.add_argument("file", help="alpaca_eval annotations: JSON array or JSON lines; - reads standard input")
    lc.add_argument("--glm", default=None, help="length_controlled_v1 (default) | length_controlled_noreg | "
                    "length_controlled_minimal")
    lc.add_argument("--json", action="store_true", help="print JSON")
    lc.set_defaults(fn=cmd_lc_winrate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors exit 2 (argparse)
    return args.fn(args)
