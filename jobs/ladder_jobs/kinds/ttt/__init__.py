"""ttt: byte-level language models with Test-Time-Training layers (TTT-Linear, TTT-MLP) and two
baselines (causal Transformer, gated linear recurrence) in one harness. See model.py for the
math, data.py for the data, train.py for the loop. torch is imported only inside run().

    {"preset": "xs", "layer": "ttt_mlp", "data": "recall", "seed": 1}

Scale axis: the presets xs < s < m < l (xs, s: CPU; m, l: GPU). Design axes: `layer`, `data`,
`mini_batch`, `inner_lr`, `inner_mean`, `lr`. Metrics pushed: train_loss (every step); val_loss,
val_ppl, tokens_per_s (since the previous eval), peak_mem_mb (every eval_interval and the last
step); val_loss_pos_{a}_{b} (last step only: pos_buckets equal ranges of positions). Result:
the last step's values plus tokens_per_s (whole run), n_params, steps, train_tokens.
"""

from __future__ import annotations

from ladder_jobs.config import ConfigError

HELP = "byte-level LM with TTT-Linear / TTT-MLP / Transformer / gated-linear mixers (torch)"

LAYERS = ("ttt_linear", "ttt_mlp", "transformer", "gated_linear")
DATA = ("text", "recall", "markov")
DEVICES = ("auto", "cpu", "cuda")

# Defaults are the xs rung: small enough for a CPU test run. The presets below are the scale axis.
DEFAULTS = {
    # model
    "layer": "ttt_linear",  # sequence mixer: ttt_linear | ttt_mlp | transformer | gated_linear
    "d_model": 64,  # width
    "n_layers": 2,  # blocks (pre-norm: mixer, then MLP)
    "n_heads": 4,  # heads; d_model / n_heads is the head width K (TTT state per head: K x K)
    "mlp_ratio": 4,  # block MLP hidden = mlp_ratio * d_model
    "mini_batch": 16,  # TTT mini-batch size b (the paper's default)
    "inner_lr": 0.0,  # eta_base of the TTT inner step; 0 = the paper's (0.5 for ttt_linear, 0.05 for ttt_mlp in our loss convention)
    "inner_mean": True,  # TTT step = mean (not sum) of the mini-batch's gradients so far, as the authors' code
    # data
    "data": "text",  # text (Debian licence texts) | recall (associative recall) | markov (Zipfian Markov)
    "seq_len": 256,  # context length T
    "batch_size": 8,  # sequences per step
    "corpus_bytes": 2_000_000,  # text: read at most this many bytes of the corpus
    "recall_keys": 32,  # recall: distinct keys per sequence
    "markov_zipf": 1.2,  # markov: Zipf exponent of each transition row
    # optimisation: AdamW, linear warmup then cosine decay to lr / 10
    "steps": 100,
    "lr": 3e-3,
    "warmup": 10,
    "weight_decay": 0.1,
    "grad_clip": 1.0,
    # evaluation
    "eval_interval": 25,  # val_loss / val_ppl every this many steps and at the last step
    "val_batches": 4,  # batches in the fixed validation set
    "pos_buckets": 4,  # loss-by-position buckets at the final step (seq_len split evenly)
    # run
    "seed": 0,  # init, data order and validation set; same seed -> same numbers on CPU
    "checkpoint_every": 50,  # steps between checkpoints (0: only on stop and at the end)
    "device": "auto",  # auto (cuda if available) | cpu | cuda; bf16 autocast on cuda
    "step_sleep": 0.0,  # test knob: seconds slept per step, so a test can SIGTERM a running job
}

# Shaped like the paper's ladder (125M: 12 layers x 768, 12 heads; 350M: 24 x 1024), scaled by
# width and depth. Byte vocab, so embeddings are tiny and nearly all parameters are in the blocks.
PRESETS = {
    "xs": {},  # ~0.1M params, CPU, well under a minute
    "s": {"d_model": 128, "n_layers": 4, "n_heads": 4, "seq_len": 512, "batch_size": 16, "steps": 300,
          "eval_interval": 50, "pos_buckets": 8, "checkpoint_every": 100},  # ~0.8M, CPU minutes or GPU seconds
    "m": {"d_model": 384, "n_layers": 6, "n_heads": 6, "seq_len": 1024, "batch_size": 16, "steps": 2000,
          "lr": 1.5e-3, "warmup": 100, "eval_interval": 200, "val_batches": 8, "pos_buckets": 8,
          "checkpoint_every": 500, "corpus_bytes": 20_000_000},  # ~11M, GPU
    "l": {"d_model": 768, "n_layers": 12, "n_heads": 12, "seq_len": 2048, "batch_size": 16, "steps": 5000,
          "lr": 6e-4, "warmup": 250, "eval_interval": 500, "val_batches": 8, "pos_buckets": 8,
          "checkpoint_every": 500, "corpus_bytes": 50_000_000},  # ~85M (125M-class blocks), GPU
}


def validate(config: dict) -> None:
    def bad(key, why):
        raise ConfigError(f"key '{key}' of kind 'ttt' {why}, got {config[key]!r}")

    for key, allowed in (("layer", LAYERS), ("data", DATA), ("device", DEVICES)):
        if config[key] not in allowed:
            bad(key, f"must be one of {', '.join(allowed)}")
    for key in ("d_model", "n_layers", "n_heads", "mlp_ratio", "mini_batch", "seq_len", "batch_size",
                "corpus_bytes", "recall_keys", "steps", "eval_interval", "val_batches", "pos_buckets", "lr"):
        if config[key] <= 0:
            bad(key, "must be > 0")
    for key in ("inner_lr", "warmup", "weight_decay", "grad_clip", "checkpoint_every", "step_sleep", "seed", "markov_zipf"):
        if config[key] < 0:
            bad(key, "must be >= 0")
    if config["d_model"] % config["n_heads"] or (config["d_model"] // config["n_heads"]) % 2:
        bad("n_heads", "must divide d_model into an even head width")
    if config["recall_keys"] > 128:
        bad("recall_keys", "must be <= 128")
    if config["pos_buckets"] > config["seq_len"]:
        bad("pos_buckets", "must be <= seq_len")


def run(config: dict, ctx) -> None:
    from ladder_jobs.kinds.ttt.train import train  # imports torch

    train(config, ctx)
