"""bench_gpu.py's CPU check (--tiny): it runs, its JSON parses, and its models match in size.

The GPU numbers themselves are not tested here (no GPU in CI); this keeps the script from rotting.
"""

import json
import subprocess
import sys

import pytest
from conftest import JOBS_DIR


@pytest.mark.torch
def test_bench_tiny_runs_on_cpu_with_equal_parameter_counts():
    r = subprocess.run([sys.executable, "bench_gpu.py", "--tiny", "--layers", "ttt_linear", "ttt_mlp"], cwd=JOBS_DIR,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])  # the table, then the JSON object
    rows = out["rows"]
    assert sorted({(row["context"], row["layer"]) for row in rows}) == sorted(
        (t, layer) for t in (64, 128) for layer in ("transformer", "ttt_linear", "ttt_mlp"))
    for row in rows:
        assert row["tokens_per_s"] > 0 and row["flops_per_token"] > 0 and row["mfu"] > 0
        # equal parameter count: the block MLP width absorbs the mixers' extra weights. At the
        # tiny shape one step of 8 in that width is ~1.3% of the model, so allow 2%.
        assert abs(row["params_vs_ref"]) < 0.02, row
        assert row["vs_transformer"] == pytest.approx(row["tokens_per_s"] / next(
            r2["tokens_per_s"] for r2 in rows if r2["context"] == row["context"] and r2["layer"] == "transformer"))
    ttt_mlp = next(row for row in rows if row["layer"] == "ttt_mlp")
    tf = next(row for row in rows if row["layer"] == "transformer")
    assert ttt_mlp["mlp_hidden"] < tf["mlp_hidden"]  # TTT-MLP's inner weights paid for by a narrower block MLP


def test_bench_refuses_a_bad_context_naming_the_flag():
    r = subprocess.run([sys.executable, "bench_gpu.py", "--contexts", "0"], cwd=JOBS_DIR, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "--contexts" in r.stderr
