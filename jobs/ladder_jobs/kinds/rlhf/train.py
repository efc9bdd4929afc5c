"""The `rlhf` run: SFT -> Bradley-Terry reward model -> method -> evaluation, as one step counter.

    steps 1 .. sft_end           SFT on demonstrations                      (logs sft_loss)
    steps sft_end+1 .. rm_end    reward model on pairwise training feedback (logs rm_loss; rm_acc at rm_end)
    steps rm_end+1 .. last_step  expert_iteration / ppo / dpo updates        (logs mean_reward, kl_to_sft, ...)
    after last_step              evaluation against the SFT reference       (logs win rates at last_step)
sft_end = sft_steps, rm_end = sft_end + rm_steps, last_step = rm_end + rl_steps (rl_steps only for
the trained methods; best_of_n uses the reward model at evaluation time, sft uses nothing).

The methods follow AlpacaFarm (Dubois et al. 2023) by default:
    ppo                per-token KL to the SFT policy clamped at >= 0, the shaped rewards whitened
                       (scale only), GAE with gamma = lam = 1, advantages whitened, a separate value
                       model started from the reward model, clipped value loss, a fixed reward for
                       responses that never emit EOS; kl_coef 0.0067, vf_coef 0.1. Each of these is
                       a config option (the earlier Ladder PPO: kl_clamp false, whiten_rewards
                       false, value_model shared, value_clip 0, penalize_no_stop false, kl_coef
                       0.05, gae_lambda 0.95, vf_coef 0.5).
    expert_iteration   offline (AlpacaFarm): best-of-ei_n samples of the SFT policy on ei_prompts
                       prompts, chosen by the reward model once, then rl_steps of SFT on them.
                       online: every step samples ei_n from the current policy and fine-tunes on
                       the best (the earlier Ladder behaviour).
    dpo                Rafailov et al.: the RM's training pairs, -log sigmoid(beta * margin of the
                       policy's log-ratio to the SFT policy between chosen and rejected).
    quark              Lu et al. as AlpacaFarm's quark_trainer: on-policy samples into a pool binned
                       by reward quantile, LM loss on the best bin (or on every bin behind its
                       reward token) + KL to the SFT policy - entropy bonus (quark.py).

Resume is exact on CPU: every batch, prompt set and sample is drawn from an RNG seeded by
(seed, stream, step), model constructors run under their own manual_seed, and the checkpoint
holds the models and optimizers. Preference data and the offline expert-iteration set are pure
functions of the frozen SFT / RM weights and the seed, so a resumed run rebuilds them bit for bit
instead of storing them.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from ladder_jobs.torch_utils import (n_params, peak_mem_mb, require_finite_losses, torch_checkpoint_store,
                                     training_device)
from ladder_jobs.kinds.rlhf import annotators
from ladder_jobs.kinds.rlhf import lc_eval
from ladder_jobs.kinds.rlhf import quark
from ladder_jobs.kinds.rlhf import task
from ladder_jobs.kinds.rlhf.model import Policy, RewardModel, ValueModel, response_logprobs, response_mask, sample
from ladder_jobs.seeding import stable_seed, torch_seed

# RNG streams: each part of the run draws from its own (seed, stream, step) RNG.
SFT, PREFS, HELDOUT, RM, RL, EVAL, EVAL_REF, EVAL_MODEL, EVAL_ANN, INIT_RM, EI_DATA, EVAL_SFT, EVAL_ANN_SFT, INIT_VALUE = range(14)
CHUNK = 4096  # sequences per forward pass in sampling / scoring (bounds GPU memory at l)
WHITEN_EPS = 1e-8
RL_METHODS = ("expert_iteration", "ppo", "dpo", "quark")
INIT_REWARD_TOKENS = 14  # Quark's reward-token embeddings: a stream after the ones above


def np_rng(cfg, stream, step=0) -> np.random.Generator:
    return np.random.default_rng(stable_seed(cfg["seed"], stream, step))


def torch_gen(cfg, stream, step=0) -> torch.Generator:
    return torch.Generator().manual_seed(torch_seed(cfg["seed"], stream, step))


# -- the PPO pieces, as pure functions of tensors (the unit tests check each by hand) ---------------

def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum()


def whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """(v - mean) / sqrt(var + eps) over the real tokens (population variance, as AlpacaFarm's
    torch_ops.whiten); shift_mean=False adds the mean back (rewards keep their sign and level).
    Padding stays 0. AlpacaFarm whitens over its padded positions too; here they are excluded."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    out = (values - mean) * torch.rsqrt(var + WHITEN_EPS)
    if not shift_mean:
        out = out + mean
    return out * mask


def shape_rewards(logp, ref_logp, score, mask, kl_coef: float, kl_clamp: bool):
    """Per-token rewards (B, R): -kl_coef * KL_t, plus the sequence's score at its last real token.
    KL_t = log pi(y_t) - log pi_SFT(y_t), clamped at 0 when kl_clamp (AlpacaFarm): a token the policy
    finds less likely than the SFT policy earns no KL bonus. Returns (rewards, kl)."""
    kl = logp - ref_logp
    if kl_clamp:
        kl = kl.clamp(min=0.0)
    kl = kl * mask
    rewards = -kl_coef * kl
    last = mask.sum(1).long() - 1  # the EOS (or, without one, the last) token
    rewards[torch.arange(len(rewards)), last] += score
    return rewards, kl


def sequence_scores(rm_score, stopped, penalize_no_stop: bool, no_stop_reward: float):
    """(B,) the RM score, or no_stop_reward for a response that never emitted EOS (AlpacaFarm's
    penalty_reward_value): otherwise a truncated response is scored as if it had finished."""
    if not penalize_no_stop:
        return rm_score
    return torch.where(stopped, rm_score, torch.full_like(rm_score, no_stop_reward))


def advantages_and_returns(rewards, values, mask, lam: float, gamma: float = 1.0):
    """GAE over the real tokens (values after the last one count as 0). Returns (adv, returns), (B, R)."""
    resp_len = rewards.shape[1]
    adv = torch.zeros_like(rewards)
    running = torch.zeros(len(rewards), dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(resp_len)):
        next_mask = mask[:, t + 1] if t + 1 < resp_len else torch.zeros_like(running)
        next_value = values[:, t + 1] * next_mask if t + 1 < resp_len else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * next_mask * running
        adv[:, t] = running
    adv = adv * mask
    return adv, adv + values * mask


def value_loss(values, old_values, returns, mask, clip: float) -> torch.Tensor:
    """clip > 0: AlpacaFarm's 0.5 * max((V - G)^2, (clip(V, V_old +- clip) - G)^2); clip = 0: (V - G)^2."""
    err = (values - returns) ** 2
    if clip > 0:
        clipped = old_values + (values - old_values).clamp(-clip, clip)
        err = 0.5 * torch.maximum(err, (clipped - returns) ** 2)
    return masked_mean(err, mask)


def policy_loss(logp, old_logp, adv, mask, clip: float) -> torch.Tensor:
    ratio = torch.exp(logp - old_logp)
    return masked_mean(-torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv), mask)


def dpo_loss(logp_chosen, logp_rejected, ref_chosen, ref_rejected, beta: float):
    """Sequence log-probs (B,) each -> (loss, margin (B,)): -log sigmoid(beta * margin)."""
    margin = (logp_chosen - ref_chosen) - (logp_rejected - ref_rejected)
    return -F.logsigmoid(beta * margin).mean(), margin


class Run:
    """All the pieces of one trial; `step(n)` does global step n."""

    def __init__(self, cfg: dict, device: torch.device):
        self.cfg, self.device = cfg, device
        self.n_prompt = task.prompt_len(cfg["max_digits"])
        self.n_resp = task.response_len(cfg["max_digits"], cfg["max_filler"])
        self.sft_end = cfg["sft_steps"]
        self.rm_end = self.sft_end + cfg["rm_steps"]
        self.last_step = self.rm_end + (cfg["rl_steps"] if cfg["method"] in RL_METHODS else 0)

        def pool(length_bias):
            return annotators.make_pool(cfg["n_annotators"], length_bias, cfg["annotator_temp"], cfg["position_bias"],
                                        cfg["quality_weight"])

        self.train_pool, self.eval_pool = pool(cfg["length_bias"]), pool(cfg["eval_length_bias"])
        torch.manual_seed(cfg["seed"])
        self.policy = Policy(cfg, task.VOCAB, self.n_prompt + self.n_resp).to(device)
        self.opt = self._adamw(self.policy.parameters(), cfg["sft_lr"])
        self.ref = self.rm = self.rm_opt = self.value = None  # ref / rm from step sft_end + 1, value from rm_end + 1
        self.in_rl = False  # entered at step rm_end + 1: fresh optimizer with rl_lr
        self._prefs = self._ei_data = None
        self.quark_pool = quark.Pool()  # checkpointed: an uncleared pool holds earlier policies' samples
        self.gen_samples, self.gen_time = 0, 0.0  # for samples/s
        self.stats: dict = {}  # rm_acc etc., carried through checkpoints

    @staticmethod
    def _adamw(params, lr):
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.0)

    # -- phase objects ---------------------------------------------------------

    def enter_rm_phase(self) -> None:
        """Freeze the SFT policy as the reference, and start the RM from its trunk (AlpacaFarm)."""
        self.ref = copy.deepcopy(self.policy).eval().requires_grad_(False)
        torch.manual_seed(torch_seed(self.cfg["seed"], INIT_RM))
        self.rm = RewardModel(self.cfg, task.VOCAB, self.n_prompt + self.n_resp).to(self.device)
        self.rm.trunk.load_state_dict(self.ref.trunk.state_dict())
        self.rm_opt = self._adamw(self.rm.parameters(), self.cfg["rm_lr"])

    def enter_rl_phase(self) -> None:
        self.in_rl = True
        self.rm.eval().requires_grad_(False)
        params = list(self.policy.parameters())
        if self.cfg["method"] == "ppo" and self.cfg["value_model"] == "separate":
            torch.manual_seed(torch_seed(self.cfg["seed"], INIT_VALUE))
            self.value = ValueModel(self.rm).to(self.device)
            params += list(self.value.parameters())  # one optimizer, as AlpacaFarm's actor-critic
        self.opt = self._adamw(params, self.cfg["rl_lr"])  # fresh moments: a new objective

    def state(self, step: int, result=None) -> dict:
        def sd(module):
            return None if module is None else module.state_dict()

        return {"step": step, "policy": sd(self.policy), "opt": sd(self.opt), "ref": sd(self.ref), "rm": sd(self.rm),
                "rm_opt": sd(self.rm_opt), "value": sd(self.value), "in_rl": self.in_rl,
                "gen_samples": self.gen_samples, "gen_time": self.gen_time, "stats": self.stats, "result": result,
                "quark_pool": self.quark_pool.state()}

    def load(self, state: dict) -> None:
        # Enter the phases the checkpointed run had entered (not merely reached: a checkpoint at
        # step sft_end still holds the SFT optimizer, and the RM phase starts at sft_end + 1).
        if state["ref"] is not None:
            self.policy.load_state_dict(state["ref"])  # rebuild ref / rm from the SFT weights ...
            self.enter_rm_phase()
            self.rm.load_state_dict(state["rm"])
            self.rm_opt.load_state_dict(state["rm_opt"])
            if state["in_rl"]:
                self.enter_rl()
                if self.value is not None:
                    self.value.load_state_dict(state["value"])
        self.policy.load_state_dict(state["policy"])  # ... then the policy as it was
        self.opt.load_state_dict(state["opt"])
        self.gen_samples, self.gen_time, self.stats = state["gen_samples"], state["gen_time"], state["stats"]
        self.quark_pool = quark.Pool.from_state(state.get("quark_pool"))  # absent from older checkpoints

    # -- helpers ---------------------------------------------------------------

    def tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.long).to(self.device)

    def sequences(self, prompts: task.Prompts, resp: np.ndarray) -> torch.Tensor:
        return self.tensor(np.concatenate([prompts.tokens, resp], 1))  # (B, P+R)

    def generate(self, model, prompts: task.Prompts, gen: torch.Generator) -> np.ndarray:
        """Responses (N, R) as numpy, in chunks; counts toward samples/s."""
        t0 = time.perf_counter()
        out = [sample(model, self.tensor(prompts.tokens[i : i + CHUNK]), self.n_resp, gen).cpu()
               for i in range(0, len(prompts), CHUNK)]
        self.gen_time += time.perf_counter() - t0
        self.gen_samples += len(prompts)
        return torch.cat(out).numpy()

    @torch.no_grad()
    def score(self, prompts: task.Prompts, resp: np.ndarray) -> np.ndarray:
        """Reward model r(x, y) (N,)."""
        seq = np.concatenate([prompts.tokens, resp], 1)
        return torch.cat([self.rm(self.tensor(seq[i : i + CHUNK]), self.n_prompt).float().cpu()
                          for i in range(0, len(seq), CHUNK)]).numpy()

    @torch.no_grad()
    def kl_to_ref(self, prompts: task.Prompts, resp: np.ndarray) -> float:
        """Monte-Carlo KL(pi || pi_SFT) on samples of pi: mean over sequences of sum_t log pi - log pi_SFT."""
        seq = self.sequences(prompts, resp)
        mask = response_mask(seq[:, self.n_prompt:])
        logp, _ = response_logprobs(self.policy, seq, self.n_prompt)
        ref_logp, _ = response_logprobs(self.ref, seq, self.n_prompt)
        return float(((logp - ref_logp) * mask).sum(1).mean())

    def prefs(self) -> dict:
        """Training pairs (noisy train pool, one judge each, 25% flips) and held-out pairs, both
        sampled from the SFT policy; a pure function of the SFT weights and the seed."""
        if self._prefs is None:
            cfg, out = self.cfg, {}
            for name, stream, n_pairs in (("train", PREFS, cfg["rm_pairs"]), ("heldout", HELDOUT, cfg["rm_heldout"])):
                rng = np_rng(cfg, stream)
                prompts = task.sample_prompts(rng, n_pairs, cfg["max_digits"])
                a = self.generate(self.ref, prompts, torch_gen(cfg, stream, 1))
                b = self.generate(self.ref, prompts, torch_gen(cfg, stream, 2))
                qa, qb, la, lb = task.quality(prompts, a), task.quality(prompts, b), task.lengths(a), task.lengths(b)
                judge = rng.integers(0, len(self.train_pool), size=n_pairs)
                y = annotators.annotate(self.train_pool, judge, qa, qb, la, lb, rng, cfg["flip_prob"])
                out[name] = dict(prompts=prompts, a=a, b=b, y=y, qa=qa, qb=qb, la=la, lb=lb)
            self._prefs = out
        return self._prefs

    def ei_data(self) -> tuple[task.Prompts, np.ndarray]:
        """Offline expert iteration's training set: per prompt the reward model's best of ei_n SFT
        samples; a pure function of the frozen SFT / RM weights and the seed."""
        if self._ei_data is None:
            cfg = self.cfg
            prompts = task.sample_prompts(np_rng(cfg, EI_DATA), cfg["ei_prompts"], cfg["max_digits"])
            best = self.best_of_n(self.ref, prompts, cfg["ei_n"], torch_gen(cfg, EI_DATA), self.score)
            self._ei_data = (prompts, best)
        return self._ei_data

    # -- steps -----------------------------------------------------------------

    def step(self, n: int) -> dict:
        if n <= self.sft_end:
            return self.sft_step(n)
        if n <= self.rm_end:
            if self.rm is None:
                self.enter_rm_phase()
            return self.rm_step(n)
        if not self.in_rl:
            self.enter_rl()
        method = self.cfg["method"]
        if method == "ppo":
            return self.ppo_step(n)
        if method == "dpo":
            return self.dpo_step(n)
        if method == "quark":
            return self.quark_step(n)
        return self.ei_offline_step(n) if self.cfg["ei_mode"] == "offline" else self.ei_online_step(n)

    def seq_logprobs(self, model, seq: torch.Tensor) -> torch.Tensor:
        """Sum of log pi(y_t) over the real response tokens (B,)."""
        logp, _ = response_logprobs(model, seq, self.n_prompt)
        return (logp * response_mask(seq[:, self.n_prompt:])).sum(1)

    def lm_loss(self, prompts: task.Prompts, resp: np.ndarray) -> torch.Tensor:
        """Masked next-token cross-entropy on the response (incl. EOS)."""
        seq = self.sequences(prompts, resp)
        logp, _ = response_logprobs(self.policy, seq, self.n_prompt)  # (B, R)
        mask = response_mask(seq[:, self.n_prompt:])
        return -(logp * mask).sum() / mask.sum()

    def _update(self, loss, params, opt) -> None:
        loss.backward()
        if self.cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(params, self.cfg["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sft_step(self, n: int) -> dict:
        cfg = self.cfg
        rng = np_rng(cfg, SFT, n)
        prompts = task.sample_prompts(rng, cfg["batch_size"], cfg["max_digits"])
        loss = self.lm_loss(prompts, task.demonstrations(prompts, rng, cfg["max_filler"], cfg["max_digits"]))
        self._update(loss, self.policy.parameters(), self.opt)
        return {"sft_loss": loss.item()}

    def rm_step(self, n: int) -> dict:
        cfg, data = self.cfg, self.prefs()["train"]
        idx = np_rng(cfg, RM, n).integers(0, len(data["y"]), size=cfg["batch_size"])
        prompts = data["prompts"].take(idx)
        seq_a, seq_b = self.sequences(prompts, data["a"][idx]), self.sequences(prompts, data["b"][idx])
        margin = self.rm(seq_a, self.n_prompt) - self.rm(seq_b, self.n_prompt)  # (B,) r(a) - r(b)
        sign = torch.as_tensor(2 * data["y"][idx] - 1, dtype=margin.dtype, device=margin.device)
        loss = -F.logsigmoid(sign * margin).mean()  # Bradley-Terry: P(a > b) = sigmoid(r_a - r_b)
        self._update(loss, self.rm.parameters(), self.rm_opt)
        out = {"rm_loss": loss.item()}
        if n == self.rm_end:
            self.stats.update(self.rm_accuracy())
            out.update(self.stats)
        return out

    def rm_accuracy(self) -> dict:
        """Held-out pairs: agreement with the NOISELESS evaluation pool's preference (its expected
        choice; length bias included) and with true quality (ties excluded from each)."""
        data = self.prefs()["heldout"]
        self.rm.eval()
        margin = self.score(data["prompts"], data["a"]) - self.score(data["prompts"], data["b"])
        self.rm.train()
        pref = annotators.expected_pref(self.eval_pool, data["qa"], data["qb"], data["la"], data["lb"])
        keep = np.abs(pref - 0.5) > 1e-9
        keep_true = data["qa"] != data["qb"]
        return {"rm_acc": float(np.mean((margin > 0)[keep] == (pref > 0.5)[keep])) if keep.any() else 0.5,
                "rm_acc_true": float(np.mean((margin > 0)[keep_true] == (data["qa"] > data["qb"])[keep_true]))
                if keep_true.any() else 0.5}

    def ei_online_step(self, n: int) -> dict:
        """Online expert iteration: ei_n samples per prompt from the current policy, keep the RM's best, fine-tune."""
        cfg, n_samples = self.cfg, self.cfg["ei_n"]
        prompts = task.sample_prompts(np_rng(cfg, RL, n), cfg["batch_size"], cfg["max_digits"])
        t0 = time.perf_counter()
        repeated = prompts.repeat(n_samples)
        resp = self.generate(self.policy, repeated, torch_gen(cfg, RL, n))  # (B*n, R)
        rewards = self.score(repeated, resp).reshape(-1, n_samples)  # (B, n)
        best = np.arange(len(prompts)) * n_samples + rewards.argmax(1)
        kl = self.kl_to_ref(repeated, resp)
        loss = self.lm_loss(prompts, resp[best])
        self._update(loss, self.policy.parameters(), self.opt)
        return {"ei_loss": loss.item(), "mean_reward": float(rewards.mean()), "best_reward": float(rewards.max(1).mean()),
                "kl_to_sft": kl, "train_true_quality": float(task.quality(repeated, resp).mean()),
                "mean_len": float(task.lengths(resp).mean()), "samples_per_s": len(repeated) / (time.perf_counter() - t0)}

    def ei_offline_step(self, n: int) -> dict:
        """Offline expert iteration: one SFT step on a batch of the fixed best-of-ei_n set."""
        cfg = self.cfg
        prompts, best = self.ei_data()
        idx = np_rng(cfg, RL, n).integers(0, len(prompts), size=cfg["batch_size"])
        loss = self.lm_loss(prompts.take(idx), best[idx])
        self._update(loss, self.policy.parameters(), self.opt)
        return {"ei_loss": loss.item()}

    def dpo_step(self, n: int) -> dict:
        """DPO on a batch of the reward model's training pairs (the same noisy feedback)."""
        cfg, data = self.cfg, self.prefs()["train"]
        idx = np_rng(cfg, RL, n).integers(0, len(data["y"]), size=cfg["batch_size"])
        prompts = data["prompts"].take(idx)
        a_wins = (data["y"][idx] > 0.5)[:, None]
        chosen = self.sequences(prompts, np.where(a_wins, data["a"][idx], data["b"][idx]))
        rejected = self.sequences(prompts, np.where(a_wins, data["b"][idx], data["a"][idx]))
        with torch.no_grad():
            ref_chosen, ref_rejected = self.seq_logprobs(self.ref, chosen), self.seq_logprobs(self.ref, rejected)
        loss, margin = dpo_loss(self.seq_logprobs(self.policy, chosen), self.seq_logprobs(self.policy, rejected),
                                ref_chosen, ref_rejected, cfg["dpo_beta"])
        self._update(loss, self.policy.parameters(), self.opt)
        return {"dpo_loss": loss.item(), "dpo_margin": float(margin.mean()), "dpo_acc": float((margin > 0).float().mean())}

    # -- Quark -------------------------------------------------------------------

    def quark_tokens(self) -> bool:
        """Whether the policy conditions on reward tokens (Lu et al.'s all-quantile Quark)."""
        return self.cfg["method"] == "quark" and not self.cfg["quark_best_only"]

    def enter_rl(self) -> None:
        """enter_rl_phase, after giving a reward-token policy its token rows: the RL optimizer must
        hold them, and a resumed run's policy must have the checkpoint's shape."""
        if self.quark_tokens():
            self.policy.trunk.add_reward_tokens(self.cfg["quark_bins"], torch_gen(self.cfg, INIT_REWARD_TOKENS))
        self.enter_rl_phase()

    def quark_prompts(self, prompts: task.Prompts, bins: np.ndarray) -> task.Prompts:
        """The prompts as the policy sees them: behind their bin's reward token when it has tokens."""
        if not self.quark_tokens():
            return prompts
        out = copy.copy(prompts)
        out.tokens = quark.condition(prompts.tokens, bins)
        return out

    @torch.no_grad()
    def quark_kl(self, policy_tokens: np.ndarray, prompt_tokens: np.ndarray, resp: np.ndarray) -> float:
        """Monte-Carlo KL(pi || pi_SFT) of samples of pi, as kl_to_ref, with pi reading its own
        (possibly reward-token) prompt and pi_SFT the plain one."""
        P = self.n_prompt
        seq = self.tensor(np.concatenate([policy_tokens, resp], 1))
        mask = response_mask(seq[:, P:])
        logp, _ = response_logprobs(self.policy, seq, P)
        ref_logp, _ = response_logprobs(self.ref, self.tensor(np.concatenate([prompt_tokens, resp], 1)), P)
        return float(((logp - ref_logp) * mask).sum(1).mean())

    def quark_step(self, n: int) -> dict:
        """One Quark step: quark_rollout_factor x batch_size rollouts of the current policy into the
        pool, then quark_grad_steps steps on shuffled batches of its best quantile (or of all of it,
        each sample behind its bin's token)."""
        cfg, P = self.cfg, self.n_prompt
        rng = np_rng(cfg, RL, n)
        prompts = task.sample_prompts(rng, cfg["batch_size"] * cfg["quark_rollout_factor"], cfg["max_digits"])
        t0 = time.perf_counter()
        # AlpacaFarm samples behind <reward_0>, except at the first step: the token is still untrained
        policy_prompts = prompts if n == self.rm_end + 1 else self.quark_prompts(prompts, np.zeros(len(prompts), int))
        resp = self.generate(self.policy, policy_prompts, torch_gen(cfg, RL, n))
        samples_per_s = len(prompts) / (time.perf_counter() - t0)
        rewards = self.score(prompts, resp)  # the reward model never sees a reward token
        kl = self.quark_kl(policy_prompts.tokens, prompts.tokens, resp)
        if cfg["quark_clear_pool"]:
            self.quark_pool.clear()
        pool = self.quark_pool
        pool.add(prompts.tokens, resp, rewards)
        bins = quark.quantile_bins(pool.rewards, cfg["quark_bins"])
        choices = np.arange(len(pool)) if self.quark_tokens() else np.flatnonzero(bins == 0)
        # a shuffled pass over the chosen samples, then another (AlpacaFarm's infinite loader)
        need = cfg["quark_grad_steps"] * cfg["batch_size"]
        order = np.concatenate([rng.permutation(len(choices)) for _ in range(-(-need // len(choices)))])
        for g in range(cfg["quark_grad_steps"]):
            idx = choices[order[g * cfg["batch_size"] : (g + 1) * cfg["batch_size"]]]
            plain, resp_b = pool.prompts[idx].astype(np.int64), pool.responses[idx].astype(np.int64)
            cond = quark.condition(plain, bins[idx]) if self.quark_tokens() else plain
            seq = self.tensor(np.concatenate([cond, resp_b], 1))
            logits, _ = self.policy(seq)
            with torch.no_grad():
                ref_logits, _ = self.ref(self.tensor(np.concatenate([plain, resp_b], 1)))
            loss, nll, kl_tok, entropy = quark.quark_loss(logits[:, P - 1 : -1], ref_logits[:, P - 1 : -1], seq[:, P:],
                                                          response_mask(seq[:, P:]), cfg["quark_kl_coef"],
                                                          cfg["quark_entropy_coef"])
            self._update(loss, self.policy.parameters(), self.opt)
        return {"quark_loss": loss.item(), "quark_nll": nll.item(), "quark_kl": kl_tok.item(),
                "quark_entropy": entropy.item(), "mean_reward": float(rewards.mean()),
                "best_bin_reward": float(pool.rewards[bins == 0].mean()), "pool_size": len(pool), "kl_to_sft": kl,
                "train_true_quality": float(task.quality(prompts, resp).mean()),
                "mean_len": float(task.lengths(resp).mean()), "samples_per_s": samples_per_s}

    def values(self, seq: torch.Tensor) -> torch.Tensor:
        """V for every response token (B, R): the separate value model, or the policy's own head."""
        if self.value is not None:
            return self.value(seq, self.n_prompt)
        return response_logprobs(self.policy, seq, self.n_prompt)[1]

    def ppo_step(self, n: int) -> dict:
        """One PPO round: rollouts of batch_size fresh prompts, then ppo_epochs gradient steps."""
        cfg, n_prompt = self.cfg, self.n_prompt
        prompts = task.sample_prompts(np_rng(cfg, RL, n), cfg["batch_size"], cfg["max_digits"])
        t0 = time.perf_counter()
        resp = self.generate(self.policy, prompts, torch_gen(cfg, RL, n))  # (B, R)
        seq = self.sequences(prompts, resp)
        mask = response_mask(seq[:, n_prompt:])  # (B, R)
        with torch.no_grad():
            old_logp, _ = response_logprobs(self.policy, seq, n_prompt)  # (B, R)
            old_values = self.values(seq)
            ref_logp, _ = response_logprobs(self.ref, seq, n_prompt)
            rm_score = self.rm(seq, n_prompt).float()  # (B,)
            stopped = torch.as_tensor((resp == task.EOS).any(1), device=seq.device)
            score = sequence_scores(rm_score, stopped, cfg["penalize_no_stop"], cfg["no_stop_reward"])
            rewards, kl = shape_rewards(old_logp, ref_logp, score, mask, cfg["kl_coef"], cfg["kl_clamp"])
            if cfg["whiten_rewards"]:
                rewards = whiten(rewards, mask, shift_mean=False)
            adv, returns = advantages_and_returns(rewards, old_values, mask, cfg["gae_lambda"])
            adv = whiten(adv, mask)
        params = list(self.policy.parameters()) + (list(self.value.parameters()) if self.value is not None else [])
        for _ in range(cfg["ppo_epochs"]):
            logp, _ = response_logprobs(self.policy, seq, n_prompt)
            pg = policy_loss(logp, old_logp, adv, mask, cfg["clip"])
            vf = value_loss(self.values(seq), old_values, returns, mask, cfg["value_clip"])
            loss = pg + cfg["vf_coef"] * vf
            self._update(loss, params, self.opt)
        return {"ppo_loss": loss.item(), "pg_loss": pg.item(), "vf_loss": vf.item(), "mean_reward": float(rm_score.mean()),
                "kl_to_sft": float(kl.sum(1).mean()), "stop_rate": float(stopped.float().mean()),
                "train_true_quality": float(task.quality(prompts, resp).mean()),
                "mean_len": float(task.lengths(resp).mean()), "samples_per_s": len(prompts) / (time.perf_counter() - t0)}

    def best_of_n(self, model, prompts: task.Prompts, n_samples: int, gen: torch.Generator, scorer) -> np.ndarray:
        """n samples per prompt, keep the one scorer(prompts, responses) -> (N,) rates highest: (N, R)."""
        repeated = prompts.repeat(n_samples)
        cand = self.generate(model, repeated, gen)  # (N*n, R), prompt i's samples at rows i*n .. i*n+n-1
        best = np.arange(len(prompts)) * n_samples + np.asarray(scorer(repeated, cand)).reshape(-1, n_samples).argmax(1)
        return cand[best]

    # -- evaluation --------------------------------------------------------------

    def evaluate(self) -> dict:
        """The method's outputs vs the SFT reference's on n_eval fresh instructions, judged by every
        member of the evaluation pool (no flips, eval_length_bias). Instruction difficulty for the
        LC GLM is pooled over the method's and a fresh SFT sample's annotations on the same
        instructions (one policy only for method sft, whose outputs are that sample)."""
        cfg = self.cfg
        prompts = task.sample_prompts(np_rng(cfg, EVAL), cfg["n_eval"], cfg["max_digits"])
        ref_out = self.generate(self.ref, prompts, torch_gen(cfg, EVAL_REF))
        if cfg["method"] == "best_of_n":
            n_samples = cfg["bon_n"]
            out = self.best_of_n(self.ref, prompts, n_samples, torch_gen(cfg, EVAL_MODEL), self.score)
            kl = float(np.log(n_samples) - (n_samples - 1) / n_samples)  # the analytic KL of best-of-n (Stiennon et al.)
        elif cfg["method"] == "quark":  # behind the best bin's token (<reward_0>) when the policy has tokens
            seen = self.quark_prompts(prompts, np.zeros(len(prompts), int))
            out = self.generate(self.policy, seen, torch_gen(cfg, EVAL_MODEL))
            kl = self.quark_kl(seen.tokens, prompts.tokens, out)
        else:
            policy = self.ref if cfg["method"] == "sft" else self.policy
            out = self.generate(policy, prompts, torch_gen(cfg, EVAL_MODEL))  # a fresh sample for sft too
            kl = 0.0 if cfg["method"] == "sft" else self.kl_to_ref(prompts, out)
        q_m, q_r, l_m, l_r = task.quality(prompts, out), task.quality(prompts, ref_out), task.lengths(out), task.lengths(ref_out)
        y, idx = annotators.annotate_all(self.eval_pool, q_m, q_r, l_m, l_r, np_rng(cfg, EVAL_ANN))
        pooled = []
        if cfg["method"] != "sft":
            sft_out = self.generate(self.ref, prompts, torch_gen(cfg, EVAL_SFT))
            y_sft, _ = annotators.annotate_all(self.eval_pool, task.quality(prompts, sft_out), q_r, task.lengths(sft_out),
                                               l_r, np_rng(cfg, EVAL_ANN_SFT))
            pooled.append(y_sft)
        res = lc_eval.win_rates(y, idx, prompts.group(), l_m, l_r, q_m, q_r, glm=cfg["lc_glm"], pooled=pooled)
        res.update(true_quality=float(q_m.mean()), ref_true_quality=float(q_r.mean()), mean_len=float(l_m.mean()),
                   ref_mean_len=float(l_r.mean()), mean_reward=float(self.score(prompts, out).mean()),
                   ref_mean_reward=float(self.score(prompts, ref_out).mean()), kl_to_sft=kl,
                   stop_rate=float((out == task.EOS).any(1).mean()))
        # Beside the result, not in it (result metrics are scalars): train() reports it as the
        # result's meta["eval_annotations"], so a sweep can pool difficulty over its trials (lc-winrate).
        ids = lc_eval.instruction_ids(prompts.tokens, task.clean(ref_out), self.eval_pool)
        self.eval_annotations = lc_eval.annotation_record(ids, prompts.group(), l_m, l_r, y, len(self.eval_pool))
        return res


def train(cfg: dict, ctx) -> None:
    device = training_device(cfg["device"])
    run = Run(cfg, device)
    # Not resume_or_start: a resume re-enters the phases the checkpointed run had reached (Run.load).
    ctx.use_checkpoints(torch_checkpoint_store(ctx.env.checkpoint_dir))
    meta = {"device": str(device), "torch": torch.__version__, "lc_glm": cfg["lc_glm"]}
    start = 0
    resumed = ctx.load_checkpoint()
    if resumed is not None:
        state, start = resumed
        run.load(state)
        if state["result"] is not None:  # finished before; only the result push failed
            ctx.report_result(state["result"], meta={**meta, "eval_annotations": state.get("eval_annotations")})
            return

    for n in range(start + 1, run.last_step + 1):
        if ctx.stop_requested():
            ctx.stop(run.state(n - 1), n - 1)  # checkpoint the completed step, exit 143
        values = run.step(n)
        require_finite_losses(n, values)
        ctx.log_many(n, values)
        if cfg["step_sleep"]:
            time.sleep(cfg["step_sleep"])
        if cfg["checkpoint_every"] and n % cfg["checkpoint_every"] == 0 and n < run.last_step:
            ctx.save_checkpoint(run.state(n), n)

    res = run.evaluate()
    meta["eval_annotations"] = run.eval_annotations  # result metrics are scalars; meta holds JSON
    ctx.log_many(run.last_step, {("eval_" + k if k in ("mean_reward", "kl_to_sft", "mean_len", "stop_rate") else k): v for k, v in res.items()})
    res.update(run.stats)
    res.update(samples_per_s=run.gen_samples / max(run.gen_time, 1e-9), n_params=n_params(run.policy),
               n_params_rm=n_params(run.rm), n_params_value=n_params(run.value) if run.value is not None else 0, steps=run.last_step, peak_mem_mb=peak_mem_mb(device))
    state = {**run.state(run.last_step, result=res), "eval_annotations": run.eval_annotations}
    ctx.save_checkpoint(state, run.last_step)  # a retry after a failed push need not retrain
    ctx.report_result(res, meta=meta)

