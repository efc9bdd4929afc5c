"""rlhf: learning from pairwise feedback in a simulator, AlpacaFarm style, with length-controlled
evaluation (Length-Controlled AlpacaEval). task.py: the instructions with checkable answers (so a
hidden true quality exists); annotators.py: the simulated judges; model.py: policy, reward and
value models; train.py: SFT -> Bradley-Terry RM -> method -> evaluation (the methods follow
AlpacaFarm's reference choices by default; see its docstring); quark.py: Quark's quantile bins,
reward tokens and loss; lc_eval.py: raw / LC / true win rates with alpaca_eval's GLMs;
lc_file.py: the same on an alpaca_eval annotation file (the `lc-winrate` command). torch is
imported only inside run(); the cross-validated LC GLMs need scikit-learn at evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

from ladder_jobs.config import KindConfig, setting

HELP = ("simulated RLHF (AlpacaFarm): SFT, BT reward model, best-of-n / expert iteration / PPO / DPO / Quark; raw, "
        "LC and true win rates (torch, scikit-learn)")

METHODS = ("sft", "best_of_n", "expert_iteration", "ppo", "dpo", "quark")
EI_MODES = ("offline", "online")
VALUE_MODELS = ("separate", "shared")
# alpaca_eval's GLM names (lc_eval.py says how each is fitted); here so that checking a config needs no numpy
GLMS = ("length_controlled_v1", "length_controlled_noreg", "length_controlled_minimal")
DEFAULT_GLM = GLMS[0]
DEVICES = ("auto", "cpu", "cuda")

# Defaults are the xs rung (CPU, well under a minute). Presets below grow model and data.
@dataclass(frozen=True)
class Config(KindConfig, kind="rlhf"):
    method: str = setting("ppo", choices=METHODS)  # sft | best_of_n | expert_iteration | ppo | dpo | quark
    # task: instructions over 2..max_digits digits (copy, reverse, sort, max, sum mod 10)
    max_digits: int = setting(5, ge=2, le=16)
    max_filler: int = setting(6, ge=0)  # SFT demos append 0..max_filler filler tokens: the length spread a biased RM exploits
    # policy / reward model (same trunk shape; the RM starts from the SFT trunk)
    d_model: int = setting(64, gt=0)
    n_layers: int = setting(2, gt=0)
    n_heads: int = setting(4, gt=0)
    # SFT
    sft_steps: int = setting(200, gt=0)
    sft_lr: float = setting(3e-3, gt=0)
    batch_size: int = setting(64, gt=0)  # prompts per step in every phase (pairs in the RM phase)
    # simulated annotators (AlpacaFarm): judge j prefers A w.p. sigmoid((w*dq + lb_j*dlen + pb_j)/temp_j)
    n_annotators: int = setting(4, gt=0)  # pool size; lb, temp spread 0.5x..1.5x of their means across the pool
    quality_weight: float = setting(4.0, ge=0)  # w: logit per unit of true-quality difference
    length_bias: float = setting(0.3, ge=0)  # mean length bias of the TRAINING pool, logit per extra token
    eval_length_bias: float = setting(0.3, ge=0)  # mean length bias of the EVALUATION pool (real evaluators have one)
    annotator_temp: float = setting(1.0, gt=0)  # mean noise temperature of a judge
    position_bias: float = 0.2  # +-: half the judges prefer the first-shown output, half the second
    flip_prob: float = setting(0.25, ge=0.0, lt=0.5)  # training feedback label flips (AlpacaFarm's 25%)
    # Bradley-Terry reward model
    rm_pairs: int = setting(1024, gt=0)  # training preference pairs (two SFT samples per prompt)
    rm_heldout: int = setting(256, gt=0)  # held-out pairs for rm_acc (noiseless eval-pool labels)
    rm_steps: int = setting(150, gt=0)
    rm_lr: float = setting(1e-3, gt=0)
    # methods
    bon_n: int = setting(8, gt=0, le=256)  # best_of_n: n at evaluation
    rl_steps: int = setting(30, ge=0)  # expert_iteration / ppo / dpo / quark updates (each on a batch of batch_size)
    rl_lr: float = setting(3e-4, gt=0)
    # expert iteration. offline (AlpacaFarm): best-of-ei_n SFT samples on ei_prompts prompts, chosen
    # by the RM once, then rl_steps SFT steps on them. online: each step samples ei_n per prompt
    # from the current policy and fine-tunes on the best (earlier Ladder; ei_n 8 reproduces it).
    ei_mode: str = setting("offline", choices=EI_MODES)
    ei_n: int = setting(16, gt=0, le=256)
    ei_prompts: int = setting(512, gt=0)
    # PPO, AlpacaFarm's reference settings (earlier Ladder: kl_coef 0.05, gae_lambda 0.95,
    # vf_coef 0.5, value_model shared, value_clip 0, kl_clamp / whiten_rewards / penalize_no_stop false)
    kl_coef: float = setting(0.0067, ge=0)  # per-token KL penalty to the SFT policy
    kl_clamp: bool = True  # per-token KL clamped at >= 0 in the reward
    whiten_rewards: bool = True  # shaped rewards divided by their std (mean kept) before GAE
    value_model: str = setting("separate", choices=VALUE_MODELS)  # separate (trunk from the reward model, zero head) | shared (policy's value head)
    value_clip: float = setting(0.2, ge=0)  # value loss 0.5 * max((V-G)^2, (clip(V, V_old +- value_clip)-G)^2); 0: plain (V-G)^2
    penalize_no_stop: bool = True  # a response without EOS gets no_stop_reward instead of its RM score
    no_stop_reward: float = setting(-1.0, ge=-100.0, le=100.0)
    ppo_epochs: int = setting(4, gt=0)  # gradient steps per batch of rollouts
    clip: float = setting(0.2, ge=0)  # ratio clip
    gae_lambda: float = setting(1.0, ge=0.0, le=1.0)
    vf_coef: float = setting(0.1, ge=0)
    grad_clip: float = setting(1.0, ge=0)
    # DPO (Rafailov et al.) on the RM's training pairs
    dpo_beta: float = setting(0.1, gt=0)
    # Quark (Lu et al.) as AlpacaFarm's quark_trainer runs it (quark.py): each step samples
    # quark_rollout_factor x batch_size responses into the pool, bins the pool into quark_bins
    # reward quantiles and takes quark_grad_steps steps on batches of batch_size from it
    quark_bins: int = setting(4, ge=2, le=64)  # K, AlpacaFarm's num_reward_tokens (4)
    quark_kl_coef: float = setting(0.05, ge=0)  # AlpacaFarm's rlhf_quark.sh 0.05 (its TrainingArguments default: 0.2)
    quark_entropy_coef: float = setting(0.0, ge=0)  # AlpacaFarm's entropy_coef (0)
    quark_clear_pool: bool = True  # empty the pool before each rollout (AlpacaFarm: true; Lu et al. keep it)
    # true (AlpacaFarm's train_on_best_quantile): train on the best quantile, no reward token.
    # false (Lu et al.): every quantile, its reward token in the prompt; <reward_0> at evaluation
    quark_best_only: bool = True
    quark_rollout_factor: int = setting(2, ge=1, le=64)  # AlpacaFarm: 512 rollouts per 256-sample step
    quark_grad_steps: int = setting(1, ge=1, le=64)  # AlpacaFarm's num_gradient_steps_per_step (1)
    # evaluation
    n_eval: int = setting(256, gt=0)  # evaluation instructions; every judge of the eval pool labels every one
    # which GLM `lc_win_rate` is (all three are reported as lc_win_rate_<v1|noreg|minimal>):
    # length_controlled_v1 (alpaca_eval's default) | length_controlled_noreg | length_controlled_minimal
    lc_glm: str = setting(DEFAULT_GLM, choices=GLMS)
    # run
    seed: int = setting(0, ge=0)
    checkpoint_every: int = setting(50, ge=0)  # steps between checkpoints (0: only on stop and at the end)
    device: str = setting("auto", choices=DEVICES)  # auto (cuda if available) | cpu | cuda
    step_sleep: float = setting(0.0, ge=0)  # test knob: seconds slept per step, so a test can SIGTERM a running job

    def check(self) -> None:
        if self.n_eval < 10:
            self.bad("n_eval", "must be >= 10 (the LC GLM's C is chosen by 5-fold cross-validation over instructions)")
        if self.d_model % self.n_heads:
            self.bad("n_heads", "must divide d_model")
        if self.method == "quark" and self.batch_size * self.quark_rollout_factor < self.quark_bins:
            self.bad("quark_bins", "must be <= batch_size * quark_rollout_factor (each quantile needs a sample)")


# The dict view of the declaration, for callers that merge overrides into it (tests, scripts).
DEFAULTS = Config.defaults()
validate = Config.validate

PRESETS = {
    "xs": {},
    "s": {"d_model": 128, "n_layers": 3, "max_digits": 6, "sft_steps": 800, "rm_steps": 500, "rm_pairs": 8192,
          "rm_heldout": 1024, "rl_steps": 100, "n_eval": 1024, "batch_size": 128, "checkpoint_every": 200,
          "ei_prompts": 2048},
    "m": {"d_model": 256, "n_layers": 4, "n_heads": 8, "max_digits": 8, "max_filler": 8, "sft_steps": 2000,
          "sft_lr": 1e-3, "rm_steps": 1500, "rm_pairs": 32768, "rm_lr": 3e-4, "rm_heldout": 2048, "rl_steps": 300,
          "rl_lr": 1e-4, "n_eval": 2048, "batch_size": 256, "checkpoint_every": 500, "ei_prompts": 8192},
    "l": {"d_model": 512, "n_layers": 8, "n_heads": 8, "max_digits": 10, "max_filler": 10, "sft_steps": 4000,
          "sft_lr": 5e-4, "rm_steps": 3000, "rm_pairs": 65536, "rm_lr": 1e-4, "rm_heldout": 4096, "rl_steps": 500,
          "rl_lr": 5e-5, "n_eval": 4096, "batch_size": 512, "checkpoint_every": 500, "ei_prompts": 16384},
}


def run(config: dict, ctx) -> None:
    from ladder_jobs.kinds.rlhf.train import train  # imports torch

    train(config, ctx)
