"""Quark (Lu et al. 2022, "Quark: Controllable Text Generation with Reinforced Unlearning") as
AlpacaFarm's reference trainer (rl/quark_trainer.py, rl/quark_utils.py) runs it:

    each step   sample from the current policy, score with the reward model, add to the data pool
                (cleared first by default: clear_data_pool_on_each_rollout), sort the pool by reward
                and cut it into K quantiles of len // K (the remainder joins the worst one);
    train       the LM loss on pool samples plus a per-token KL(pi || pi_SFT) over the whole
                distribution, minus an entropy bonus;
    condition   AlpacaFarm's default (train_on_best_quantile) trains on the best quantile only and
                adds no token; Lu et al.'s formulation (`quark_best_only: false`) keeps every
                quantile and prepends its reward token <reward_k> (k = 0 the best) to the prompt,
                samples after the first step conditioned on <reward_0>, and evaluates on it too.
                The reference policy always sees the prompt without the token.

The toy's prompts are fixed-width (`PAD.. BOS OP digits SEP`, often without a spare PAD), so the
reward token takes BOS's slot instead of shifting the prompt: it is still the first token the
model sees. Reward tokens get input-embedding rows only (ids VOCAB + k); AlpacaFarm adds output
rows too but slices them off the logits for the KL and the entropy, and a reward token is never a
target, so the policy's lm_head stays VOCAB wide.

Pure functions of arrays / tensors, so the tests can check each against numpy.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ladder_jobs.kinds.rlhf import task


def reward_token(k: int | np.ndarray):
    """The token id of bin k's reward token (<reward_k>; 0 = the best quantile)."""
    return task.VOCAB + k


def quantile_bins(rewards: np.ndarray, k: int) -> np.ndarray:
    """(N,) bin of each sample: the pool sorted by reward, best first (ties keep pool order, as a
    stable sort), cut into k chunks of N // k; the last (worst) chunk also takes the N % k left over."""
    n = len(rewards)
    if n < k:
        raise ValueError(f"a pool of {n} samples cannot fill {k} quantiles")
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-np.asarray(rewards, dtype=np.float64), kind="stable")] = np.arange(n)
    return np.minimum(rank // (n // k), k - 1)


def condition(prompt_tokens: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Prompts (N, P) with each one's BOS replaced by its bin's reward token: a new array."""
    out = np.array(prompt_tokens, copy=True)
    is_bos = out == task.BOS
    if not np.all(is_bos.sum(1) == 1):
        raise ValueError("every prompt must hold exactly one BOS to carry the reward token")
    out[is_bos] = reward_token(np.asarray(bins, dtype=out.dtype))
    return out


def quark_loss(logits: torch.Tensor, ref_logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
               kl_coef: float, entropy_coef: float):
    """AlpacaFarm's per-token Quark objective -log pi(y_t) + kl_coef * KL_t - entropy_coef * H_t with
    KL_t = sum_v pi(v) (log pi(v) - log pi_SFT(v)) and H_t the policy's entropy, averaged over the
    real response tokens (mask: up to and including EOS). AlpacaFarm averages over every position
    and leaves the log-prob of the padding after EOS in; here padding does not count, as in this
    kind's other LM losses. logits, ref_logits (B, R, V) at the positions that predict targets (B, R).
    Returns (loss, nll, kl, entropy), each a scalar (the last three detached, masked means)."""
    logp = F.log_softmax(logits.float(), -1)
    ref_logp = F.log_softmax(ref_logits.float(), -1)
    p = logp.exp()
    nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, R)
    kl = (p * (logp - ref_logp)).sum(-1)
    entropy = -(p * logp).sum(-1)
    denom = mask.sum()

    def mean(x):
        return (x * mask).sum() / denom

    loss = mean(nll + kl_coef * kl - entropy_coef * entropy)
    return loss, mean(nll).detach(), mean(kl).detach(), mean(entropy).detach()


class Pool:
    """Quark's data pool: prompt tokens (N, P), responses (N, R) and their reward-model scores (N,).
    Stored as small ints (the vocabulary fits int8), since an uncleared pool grows every step."""

    def __init__(self, prompts=None, responses=None, rewards=None):
        self.prompts = np.zeros((0, 0), np.int8) if prompts is None else prompts
        self.responses = np.zeros((0, 0), np.int8) if responses is None else responses
        self.rewards = np.zeros(0) if rewards is None else rewards

    def __len__(self) -> int:
        return len(self.rewards)

    def add(self, prompts: np.ndarray, responses: np.ndarray, rewards: np.ndarray) -> None:
        prompts, responses = prompts.astype(np.int8), responses.astype(np.int8)
        if len(self):
            prompts, responses = np.concatenate([self.prompts, prompts]), np.concatenate([self.responses, responses])
            rewards = np.concatenate([self.rewards, rewards])
        self.prompts, self.responses, self.rewards = prompts, responses, np.asarray(rewards, dtype=np.float64)

    def clear(self) -> None:
        self.__init__()

    def state(self) -> dict:
        return {"prompts": self.prompts, "responses": self.responses, "rewards": self.rewards}

    @classmethod
    def from_state(cls, state: dict | None) -> "Pool":
        return cls() if state is None else cls(state["prompts"], state["responses"], state["rewards"])
