"""ttt: byte-level language models with Test-Time-Training layers (TTT-Linear, TTT-MLP) and two
baselines (causal Transformer, linear attention with scalar decay) in one harness. See model.py for the
math, data.py for the data, train.py for the loop. torch is imported only inside run().

    {"preset": "xs", "layer": "ttt_mlp", "data": "recall", "seed": 1}

Scale axis: the presets xs < s < m < l (xs, s: CPU; m, l: GPU). Design axes: `layer`, `data`,
`mini_batch`, `inner_lr`, `inner_mean`, `lr`; fidelity to the authors' code (each default is
theirs, the other value the earlier harness): `backbone`, `norm`, `mlp`, `rope`, `learn_token_idx`.
Metrics pushed: train_loss (every step); val_loss, val_ppl, tokens_per_s (since the previous
eval), peak_mem_mb (every eval_interval and the last step); val_loss_pos_{a}_{b} (last step only:
pos_buckets equal ranges of positions). Result: the last step's values plus tokens_per_s (whole
run), n_params, steps, train_tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from ladder_jobs.config import ConfigError, KindConfig, setting

HELP = "byte-level LM with TTT-Linear / TTT-MLP / Transformer / decay-linear-attention mixers (torch)"

LAYERS = ("ttt_linear", "ttt_mlp", "transformer", "decay_linear_attn")
# Former names, refused with the new one named: a config that says gated_linear meant this
# baseline, and silently mapping it would hide that its results were never a Mamba comparison.
RENAMED_LAYERS = {"gated_linear": "decay_linear_attn"}
BACKBONES = ("mamba", "transformer")
NORMS = ("rmsnorm", "layernorm")
MLPS = ("swiglu", "gelu")
DATA = ("text", "recall", "markov")
DEVICES = ("auto", "cpu", "cuda")

# Defaults are the xs rung: small enough for a CPU test run. The presets below are the scale axis.
@dataclass(frozen=True)
class Config(KindConfig, kind="ttt"):
    # model
    layer: str = "ttt_linear"  # sequence mixer: ttt_linear | ttt_mlp | transformer | decay_linear_attn (was gated_linear)
    # TTT mixers only: mamba (the paper's headline: causal conv before the mixer, Q/K sharing one projection
    # through two convs, GELU-tanh output gate) | transformer; the baselines are their own architectures
    backbone: str = setting("mamba", choices=BACKBONES)
    norm: str = setting("rmsnorm", choices=NORMS)  # block norms: rmsnorm (Llama, the authors') | layernorm (GPT-2)
    mlp: str = setting("swiglu", choices=MLPS)  # block MLP: swiglu (Llama, the authors') | gelu (GPT-2)
    d_model: int = setting(64, gt=0)  # width
    n_layers: int = setting(2, gt=0)  # blocks (pre-norm: mixer, then MLP)
    n_heads: int = setting(4, gt=0)  # heads; d_model / n_heads is the head width K (TTT state per head: K x K)
    mlp_ratio: int = setting(4, gt=0)  # block MLP hidden = mlp_ratio * d_model (gelu), 2/3 of it rounded up to 8 (swiglu: same params)
    mlp_hidden: int = setting(0, ge=0, le=1 << 16)  # block MLP hidden width; 0 = from mlp_ratio (set it to match parameter counts)
    mini_batch: int = setting(16, gt=0, le=4096)  # TTT mini-batch size b (the paper's default)
    inner_lr: float = setting(0.0, ge=0)  # eta_base of the TTT inner step; 0 = the paper's (0.5 for ttt_linear, 0.05 for ttt_mlp in our loss convention)
    inner_mean: bool = True  # TTT step = mean (not sum) of the mini-batch's gradients so far, as the authors' code
    learn_token_idx: bool = True  # TTT: learned offset per mini-batch position on that 1/(i+1) scale (authors' learnable_token_idx)
    rope: bool = True  # TTT: rotary on Q and K at positions t % mini_batch, as the authors' code (the transformer always has RoPE)
    conv_kernel: int = setting(4, gt=0, le=64)  # mamba backbone: width of the causal convs
    # data
    data: str = setting("text", choices=DATA)  # text (Debian licence texts) | recall (associative recall) | markov (Zipfian Markov)
    seq_len: int = setting(256, gt=0)  # context length T
    batch_size: int = setting(8, gt=0)  # sequences per step
    corpus_bytes: int = setting(2_000_000, gt=0)  # text: read at most this many bytes of the corpus
    recall_keys: int = setting(32, gt=0, le=128)  # recall: distinct keys per sequence
    markov_zipf: float = setting(1.2, ge=0)  # markov: Zipf exponent of each transition row
    # optimisation: AdamW, linear warmup then cosine decay to lr / 10
    steps: int = setting(100, gt=0)
    lr: float = setting(3e-3, gt=0)
    warmup: int = setting(10, ge=0)
    weight_decay: float = setting(0.1, ge=0)
    grad_clip: float = setting(1.0, ge=0)
    # evaluation
    eval_interval: int = setting(25, gt=0)  # val_loss / val_ppl every this many steps and at the last step
    val_batches: int = setting(4, gt=0)  # batches in the fixed validation set
    pos_buckets: int = setting(4, gt=0)  # loss-by-position buckets at the final step (seq_len split evenly)
    # run
    seed: int = setting(0, ge=0)  # init, data order and validation set; same seed -> same numbers on CPU
    checkpoint_every: int = setting(50, ge=0)  # steps between checkpoints (0: only on stop and at the end)
    device: str = setting("auto", choices=DEVICES)  # auto (cuda if available) | cpu | cuda; bf16 autocast on cuda
    step_sleep: float = setting(0.0, ge=0)  # test knob: seconds slept per step, so a test can SIGTERM a running job

    def check(self) -> None:
        if self.layer in RENAMED_LAYERS:
            raise ConfigError(f"key 'layer' of kind 'ttt': '{self.layer}' was renamed "
                              f"'{RENAMED_LAYERS[self.layer]}' (a linear attention with a scalar decay, not Mamba); "
                              "use the new name")
        if self.layer not in LAYERS:
            self.bad("layer", f"must be one of {', '.join(LAYERS)}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            self.bad("n_heads", "must divide d_model into an even head width")
        if self.pos_buckets > self.seq_len:
            self.bad("pos_buckets", "must be <= seq_len")


# The dict view of the declaration, for callers that merge overrides into it (tests, scripts).
DEFAULTS = Config.defaults()
validate = Config.validate

# Shaped like the paper's ladder (125M: 12 layers x 768, 12 heads; 350M: 24 x 1024), scaled by
# width and depth. Byte vocab, so embeddings are tiny and nearly all parameters are in the blocks.
PRESETS = {
    "xs": {},  # ~0.12M params, CPU
    "s": {"d_model": 128, "n_layers": 4, "n_heads": 4, "seq_len": 512, "batch_size": 16, "steps": 300,
          "eval_interval": 50, "pos_buckets": 8, "checkpoint_every": 100},  # ~0.8M, CPU minutes or GPU seconds
    "m": {"d_model": 384, "n_layers": 6, "n_heads": 6, "seq_len": 1024, "batch_size": 16, "steps": 2000,
          "lr": 1.5e-3, "warmup": 100, "eval_interval": 200, "val_batches": 8, "pos_buckets": 8,
          "checkpoint_every": 500, "corpus_bytes": 20_000_000},  # ~11M, GPU
    "l": {"d_model": 768, "n_layers": 12, "n_heads": 12, "seq_len": 2048, "batch_size": 16, "steps": 5000,
          "lr": 6e-4, "warmup": 250, "eval_interval": 500, "val_batches": 8, "pos_buckets": 8,
          "checkpoint_every": 500, "corpus_bytes": 50_000_000},  # ~86M (125M-class blocks), GPU
}


def run(config: dict, ctx) -> None:
    from ladder_jobs.kinds.ttt.train import train  # imports torch

    train(config, ctx)
