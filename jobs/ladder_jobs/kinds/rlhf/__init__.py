"""rlhf: learning from pairwise feedback in a simulator, AlpacaFarm style, with length-controlled
evaluation (Length-Controlled AlpacaEval). task.py: the instructions with checkable answers (so a
hidden true quality exists); annotators.py: the simulated judges; model.py: policy and reward
model; train.py: SFT -> Bradley-Terry RM -> method -> evaluation; lc_eval.py: raw / LC / true win
rates. torch is imported only inside run().
"""

from __future__ import annotations

from ladder_jobs.config import ConfigError

HELP = "simulated RLHF (AlpacaFarm): SFT, BT reward model, best-of-n / expert iteration / PPO; raw, LC and true win rates (torch)"

METHODS = ("sft", "best_of_n", "expert_iteration", "ppo")
DEVICES = ("auto", "cpu", "cuda")

# Defaults are the xs rung (CPU, well under a minute). Presets below grow model and data.
DEFAULTS = {
    "method": "ppo",  # sft | best_of_n | expert_iteration | ppo
    # task: instructions over 2..max_digits digits (copy, reverse, sort, max, sum mod 10)
    "max_digits": 5,
    "max_filler": 6,  # SFT demos append 0..max_filler filler tokens: the length spread a biased RM exploits
    # policy / reward model (same trunk shape; the RM starts from the SFT trunk)
    "d_model": 64,
    "n_layers": 2,
    "n_heads": 4,
    # SFT
    "sft_steps": 200,
    "sft_lr": 3e-3,
    "batch_size": 64,  # prompts per step in every phase (pairs in the RM phase)
    # simulated annotators (AlpacaFarm): judge j prefers A w.p. sigmoid((w*dq + lb_j*dlen + pb_j)/temp_j)
    "n_annotators": 4,  # pool size; lb, temp spread 0.5x..1.5x of their means across the pool
    "quality_weight": 4.0,  # w: logit per unit of true-quality difference
    "length_bias": 0.3,  # mean length bias of the TRAINING pool, logit per extra token
    "eval_length_bias": 0.3,  # mean length bias of the EVALUATION pool (real evaluators have one)
    "annotator_temp": 1.0,  # mean noise temperature of a judge
    "position_bias": 0.2,  # +-: half the judges prefer the first-shown output, half the second
    "flip_prob": 0.25,  # training feedback label flips (AlpacaFarm's 25%)
    # Bradley-Terry reward model
    "rm_pairs": 1024,  # training preference pairs (two SFT samples per prompt)
    "rm_heldout": 256,  # held-out pairs for rm_acc (noiseless eval-pool labels)
    "rm_steps": 150,
    "rm_lr": 1e-3,
    # methods
    "bon_n": 8,  # best_of_n: n at evaluation; expert_iteration: samples per prompt per step
    "rl_steps": 30,  # expert_iteration / ppo updates (each on batch_size fresh prompts)
    "rl_lr": 3e-4,
    "kl_coef": 0.05,  # PPO: per-token KL penalty to the SFT policy
    "ppo_epochs": 4,  # PPO: gradient steps per batch of rollouts
    "clip": 0.2,  # PPO ratio clip
    "gae_lambda": 0.95,
    "vf_coef": 0.5,
    "grad_clip": 1.0,
    # evaluation
    "n_eval": 256,  # evaluation instructions; every judge of the eval pool labels every one
    # run
    "seed": 0,
    "checkpoint_every": 50,  # steps between checkpoints (0: only on stop and at the end)
    "device": "auto",  # auto (cuda if available) | cpu | cuda
    "step_sleep": 0.0,  # test knob: seconds slept per step, so a test can SIGTERM a running job
}

PRESETS = {
    "xs": {},
    "s": {"d_model": 128, "n_layers": 3, "max_digits": 6, "sft_steps": 800, "rm_steps": 500, "rm_pairs": 8192,
          "rm_heldout": 1024, "rl_steps": 100, "n_eval": 1024, "batch_size": 128, "checkpoint_every": 200},
    "m": {"d_model": 256, "n_layers": 4, "n_heads": 8, "max_digits": 8, "max_filler": 8, "sft_steps": 2000,
          "sft_lr": 1e-3, "rm_steps": 1500, "rm_pairs": 32768, "rm_lr": 3e-4, "rm_heldout": 2048, "rl_steps": 300,
          "rl_lr": 1e-4, "n_eval": 2048, "batch_size": 256, "checkpoint_every": 500},
    "l": {"d_model": 512, "n_layers": 8, "n_heads": 8, "max_digits": 10, "max_filler": 10, "sft_steps": 4000,
          "sft_lr": 5e-4, "rm_steps": 3000, "rm_pairs": 65536, "rm_lr": 1e-4, "rm_heldout": 4096, "rl_steps": 500,
          "rl_lr": 5e-5, "n_eval": 4096, "batch_size": 512, "checkpoint_every": 500},
}


def validate(config: dict) -> None:
    def bad(key, why):
        raise ConfigError(f"key '{key}' of kind 'rlhf' {why}, got {config[key]!r}")

    for key, allowed in (("method", METHODS), ("device", DEVICES)):
        if config[key] not in allowed:
            bad(key, f"must be one of {', '.join(allowed)}")
    for key in ("d_model", "n_layers", "n_heads", "sft_steps", "sft_lr", "batch_size", "n_annotators",
                "annotator_temp", "rm_pairs", "rm_heldout", "rm_steps", "rm_lr", "bon_n", "rl_lr", "ppo_epochs", "n_eval"):
        if config[key] <= 0:
            bad(key, "must be > 0")
    for key in ("max_filler", "quality_weight", "length_bias", "eval_length_bias", "rl_steps", "kl_coef", "clip",
                "vf_coef", "grad_clip", "checkpoint_every", "step_sleep", "seed"):
        if config[key] < 0:
            bad(key, "must be >= 0")
    if not 2 <= config["max_digits"] <= 16:
        bad("max_digits", "must be in 2..16")
    if not 0 <= config["flip_prob"] < 0.5:
        bad("flip_prob", "must be in [0, 0.5)")
    if not 0 <= config["gae_lambda"] <= 1:
        bad("gae_lambda", "must be in [0, 1]")
    if config["d_model"] % config["n_heads"]:
        bad("n_heads", "must divide d_model")


def run(config: dict, ctx) -> None:
    from ladder_jobs.kinds.rlhf.train import train  # imports torch

    train(config, ctx)
