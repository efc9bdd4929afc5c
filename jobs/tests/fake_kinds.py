"""Kinds that break the rules, for CLI tests (registered only by the tests)."""

HELP = "test-only: returns without recording a result"
DEFAULTS = {"steps": 1}
PRESETS: dict = {}


def run(config, ctx):
    ctx.log("loss", 1, 1.0)  # logs, but never calls ctx.report_result
