"""The `ttt` kind end to end, as the executor runs it: a subprocess with LADDER_* env, offline."""

import json
import math

import pytest
from conftest import job_env, logged_step, read_points, run_job, stop_with_sigterm, write_config

# Tests marked `torch` run a torch kind; the bad-config ones stop before torch is imported.

# The xs preset, shrunk so that one run takes seconds on 2 busy cores. lr 1e-2: at the preset's
# 3e-3, 12 steps of the default model (Mamba backbone, Llama block) moved val_loss only 0.49 nats.
TINY = {"preset": "xs", "d_model": 32, "seq_len": 64, "batch_size": 4, "steps": 8, "eval_interval": 4,
        "val_batches": 1, "corpus_bytes": 300_000, "checkpoint_every": 3, "lr": 1e-2}
# Values that depend on wall time or the process, not on the computation.
TIMING = ("tokens_per_s", "peak_mem_mb")
# "It learned": the trained val_loss must sit this far (nats) below an untrained run of the same
# config (lr=1e-12), whose val_loss is the initial model's, about ln(256) = 5.55. Measured on
# TINY at 12 steps: trained 3.78 (the earlier GPT-2-block TTT-Linear at lr 3e-3: 4.72) against
# untrained 5.53.
LEARN_MARGIN = 0.5
UNTRAINED_LR = 1e-12


def run_ttt(tmp_path, config, timeout=120):
    return run_job(["run", "--kind", "ttt", "--config", str(write_config(tmp_path, config))], job_env(tmp_path), timeout=timeout)


def loss_points(tmp_path) -> dict:
    return {k: v for k, v in read_points(tmp_path / "out" / "metrics.jsonl").items() if k[0] not in TIMING}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the config the resume test interrupts (step_sleep lets it be killed)."""
    tmp = tmp_path_factory.mktemp("ref")
    r = run_ttt(tmp, {**TINY, "step_sleep": 0.25, "steps": 12})
    assert r.returncode == 0, r.stderr
    return tmp


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """The reference's config with a learning rate too small to move anything: its val_loss."""
    tmp = tmp_path_factory.mktemp("untrained")
    r = run_ttt(tmp, {**TINY, "steps": 12, "lr": UNTRAINED_LR})
    assert r.returncode == 0, r.stderr
    return json.loads((tmp / "out" / "result.json").read_text())["metrics"]["val_loss"]


def assert_learned(trained: float, untrained: float) -> None:
    assert abs(untrained - math.log(256)) < 0.1, untrained  # the baseline really is the initial model
    assert trained < untrained - LEARN_MARGIN, (trained, untrained)


@pytest.mark.torch
def test_untrained_baseline_does_not_pass_as_learned(untrained):
    # the margin can fail: an untrained model does not clear it against itself
    with pytest.raises(AssertionError):
        assert_learned(untrained, untrained)


@pytest.mark.torch
def test_offline_run_writes_result(reference, untrained):
    result = json.loads((reference / "out" / "result.json").read_text())
    m = result["metrics"]
    buckets = ["val_loss_pos_0_15", "val_loss_pos_16_31", "val_loss_pos_32_47", "val_loss_pos_48_63"]
    for key in ["val_loss", "val_ppl", "tokens_per_s", "n_params", "peak_mem_mb", *buckets]:
        assert key in m, key
    assert m["val_ppl"] == pytest.approx(2.718281828 ** m["val_loss"])
    assert sum(m[b] for b in buckets) / 4 == pytest.approx(m["val_loss"])  # equal-width buckets
    assert_learned(m["val_loss"], untrained)  # it learned something about bytes
    assert result["config"]["layer"] == "ttt_linear" and result["config"]["seq_len"] == 64  # full config
    assert result["meta"]["preset"] == "xs"
    points = read_points(reference / "out" / "metrics.jsonl")
    assert sorted(s for (n, s) in points if n == "train_loss") == list(range(1, 13))
    assert sorted(s for (n, s) in points if n == "val_loss") == [4, 8, 12]
    assert sorted(s for (n, s) in points if n.startswith("val_loss_pos_")) == [12] * 4


@pytest.mark.torch
def test_same_seed_same_numbers(reference, tmp_path):
    r = run_ttt(tmp_path, {**TINY, "step_sleep": 0.25, "steps": 12})
    assert r.returncode == 0, r.stderr
    assert loss_points(tmp_path) == loss_points(reference)  # exact, not approx


@pytest.mark.torch
def test_sigterm_checkpoint_resume_same_curve(reference, tmp_path):
    cfg_path = write_config(tmp_path, {**TINY, "step_sleep": 0.25, "steps": 12})
    env = job_env(tmp_path)
    # step 5 logged: the stop lands after the step-3 checkpoint and before the end
    stopped_at = stop_with_sigterm("ttt", cfg_path, env, logged_step(tmp_path / "out", 5))
    assert 5 <= stopped_at < 12
    r = run_job(["run", "--kind", "ttt", "--config", str(cfg_path)], env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"resuming ttt from checkpoint at step {stopped_at}" in r.stderr
    assert loss_points(tmp_path) == loss_points(reference)
    assert json.loads((tmp_path / "out" / "result.json").read_text())["meta"]["resumed_from_step"] == stopped_at


@pytest.mark.torch
@pytest.mark.parametrize("layer,extra", [
    ("ttt_mlp", {}), ("transformer", {}), ("decay_linear_attn", {}),
    # the earlier harness' TTT-Linear: Transformer backbone, GPT-2 block, no RoPE / learned offset
    ("ttt_linear", {"backbone": "transformer", "norm": "layernorm", "mlp": "gelu", "rope": False, "learn_token_idx": False}),
])
def test_other_layers_learn(tmp_path, layer, extra):
    # text: the one source a few steps visibly learn from (recall and markov need hundreds)
    cfg = {**TINY, "layer": layer, "data": "text", "steps": 12, "eval_interval": 12, "warmup": 2, "lr": 1e-2, **extra}
    val = {}
    for name, lr in (("trained", cfg["lr"]), ("untrained", UNTRAINED_LR)):
        (tmp_path / name).mkdir()
        r = run_ttt(tmp_path / name, {**cfg, "lr": lr})
        assert r.returncode == 0, r.stderr
        m = json.loads((tmp_path / name / "out" / "result.json").read_text())["metrics"]
        assert m["n_params"] > 0
        val[name] = m["val_loss"]
    assert_learned(val["trained"], val["untrained"])


@pytest.mark.torch
@pytest.mark.parametrize("data", ["recall", "markov"])
def test_ttt_mlp_on_other_data_reports_val_loss(tmp_path, data):
    # ttt_mlp on recall once lost its val_loss (non-finite, dropped): a loss must be there and finite
    r = run_ttt(tmp_path, {**TINY, "layer": "ttt_mlp", "data": data, "steps": 3, "eval_interval": 3})
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "out" / "result.json").read_text())["metrics"]
    assert math.isfinite(m["val_loss"]) and math.isfinite(m["train_loss"])
    assert sorted(k for k in m if k.startswith("val_loss_pos_")) == [
        "val_loss_pos_0_15", "val_loss_pos_16_31", "val_loss_pos_32_47", "val_loss_pos_48_63"]


@pytest.mark.torch
def test_diverged_run_fails_loudly(tmp_path):
    # A NaN loss cannot travel as JSON, so the metrics client drops it; the run must not then
    # "succeed" with a result that silently lacks its val_loss.
    r = run_ttt(tmp_path, {**TINY, "steps": 4, "eval_interval": 2, "lr": 1e30, "warmup": 0, "grad_clip": 0.0})
    assert r.returncode == 1, r.stderr
    assert "non-finite loss at step 2: train_loss=nan, val_loss=nan" in r.stderr
    assert not (tmp_path / "out" / "result.json").exists()


@pytest.mark.parametrize(
    "override,needle",
    [({"no_such_key": 1}, "no_such_key"), ({"layer": "mamba"}, "layer"), ({"d_model": 1.5}, "d_model"),
     ({"n_heads": 3}, "n_heads"), ({"backbone": "rwkv"}, "backbone"), ({"norm": "batchnorm"}, "norm"),
     ({"mlp": "relu"}, "mlp"), ({"rope": "yes"}, "rope"), ({"conv_kernel": 0}, "conv_kernel"),
     ({"mlp_hidden": 10 ** 9}, "mlp_hidden"),
     # the old name of the decay-linear-attention baseline is refused, naming the new one
     ({"layer": "gated_linear"}, "renamed 'decay_linear_attn'")],
)
def test_bad_config_exits_2(tmp_path, override, needle):
    r = run_ttt(tmp_path, {**TINY, **override})
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
