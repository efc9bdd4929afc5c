"""The `rlhf` run: SFT -> Bradley-Terry reward model -> method -> evaluation, as one step counter.

    steps 1 .. S1            SFT on demonstrations                      (logs sft_loss)
    steps S1+1 .. S2         reward model on pairwise training feedback (logs rm_loss; rm_acc at S2)
    steps S2+1 .. S3         expert_iteration / ppo updates              (logs mean_reward, kl_to_sft, ...)
    after S3                 evaluation against the SFT reference       (logs win rates at step S3)
S1 = sft_steps, S2 = S1 + rm_steps, S3 = S2 + rl_steps (rl_steps only for expert_iteration and ppo;
best_of_n uses the reward model at evaluation time, sft uses nothing).

Resume is exact on CPU: every batch, prompt set and sample is drawn from an RNG seeded by
(seed, stream, step), model constructors run under their own manual_seed, and the checkpoint
holds the models and optimizers. Preference data is a pure function of the SFT weights and the
seed, so a run resumed inside the RM phase rebuilds it bit for bit instead of storing it.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from ladder_jobs.checkpoint import CheckpointStore
from ladder_jobs.torch_utils import peak_mem_mb, pick_device, require_finite_losses
from ladder_jobs.kinds.rlhf import annotators as A
from ladder_jobs.kinds.rlhf import lc_eval
from ladder_jobs.kinds.rlhf import task as T
from ladder_jobs.kinds.rlhf.model import Policy, RewardModel, n_params, response_logprobs, response_mask, sample
from ladder_jobs.kinds.synthetic import stable_seed

# RNG streams: each part of the run draws from its own (seed, stream, step) RNG.
SFT, PREFS, HELDOUT, RM, RL, EVAL, EVAL_REF, EVAL_MODEL, EVAL_ANN, INIT_RM = range(10)
CHUNK = 4096  # sequences per forward pass in sampling / scoring (bounds GPU memory at l)


def np_rng(cfg, stream, step=0) -> np.random.Generator:
    return np.random.default_rng(stable_seed(cfg["seed"], stream, step))


def torch_gen(cfg, stream, step=0) -> torch.Generator:
    return torch.Generator().manual_seed(stable_seed(cfg["seed"], stream, step) & (2**63 - 1))



class Run:
    """All the pieces of one trial; `step(s)` does global step s."""

    def __init__(self, cfg: dict, device: torch.device):
        self.cfg, self.device = cfg, device
        self.P = T.prompt_len(cfg["max_digits"])
        self.R = T.response_len(cfg["max_digits"], cfg["max_filler"])
        self.S1 = cfg["sft_steps"]
        self.S2 = self.S1 + cfg["rm_steps"]
        self.S3 = self.S2 + (cfg["rl_steps"] if cfg["method"] in ("expert_iteration", "ppo") else 0)
        pool = lambda lb: A.make_pool(cfg["n_annotators"], lb, cfg["annotator_temp"], cfg["position_bias"], cfg["quality_weight"])
        self.train_pool, self.eval_pool = pool(cfg["length_bias"]), pool(cfg["eval_length_bias"])
        torch.manual_seed(cfg["seed"])
        self.policy = Policy(cfg, T.VOCAB, self.P + self.R).to(device)
        self.opt = self._adamw(self.policy, cfg["sft_lr"])
        self.ref = self.rm = self.rm_opt = None  # created on entering the RM phase (step S1 + 1)
        self.in_rl = False  # entered at step S2 + 1: fresh optimizer with rl_lr
        self._prefs = None
        self.gen_samples, self.gen_time = 0, 0.0  # for samples/s
        self.stats: dict = {}  # rm_acc etc., carried through checkpoints

    @staticmethod
    def _adamw(model, lr):
        return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)

    # -- phase objects ---------------------------------------------------------

    def enter_rm_phase(self) -> None:
        """Freeze the SFT policy as the reference, and start the RM from its trunk (AlpacaFarm)."""
        self.ref = copy.deepcopy(self.policy).eval().requires_grad_(False)
        torch.manual_seed(stable_seed(self.cfg["seed"], INIT_RM) & (2**63 - 1))
        self.rm = RewardModel(self.cfg, T.VOCAB, self.P + self.R).to(self.device)
        self.rm.trunk.load_state_dict(self.ref.trunk.state_dict())
        self.rm_opt = self._adamw(self.rm, self.cfg["rm_lr"])

    def enter_rl_phase(self) -> None:
        self.in_rl = True
        self.rm.eval().requires_grad_(False)
        self.opt = self._adamw(self.policy, self.cfg["rl_lr"])  # fresh moments: a new objective

    def state(self, step: int, result=None) -> dict:
        sd = lambda m: None if m is None else m.state_dict()
        return {"step": step, "policy": sd(self.policy), "opt": sd(self.opt), "ref": sd(self.ref), "rm": sd(self.rm),
                "rm_opt": sd(self.rm_opt), "in_rl": self.in_rl, "gen_samples": self.gen_samples, "gen_time": self.gen_time,
                "stats": self.stats, "result": result}

    def load(self, st: dict) -> None:
        # Enter the phases the checkpointed run had entered (not merely reached: a checkpoint at
        # step S1 still holds the SFT optimizer, and the RM phase starts at S1 + 1).
        if st["ref"] is not None:
            self.policy.load_state_dict(st["ref"])  # rebuild ref / rm from the SFT weights ...
            self.enter_rm_phase()
            self.rm.load_state_dict(st["rm"])
            self.rm_opt.load_state_dict(st["rm_opt"])
            if st["in_rl"]:
                self.enter_rl_phase()
        self.policy.load_state_dict(st["policy"])  # ... then the policy as it was
        self.opt.load_state_dict(st["opt"])
        self.gen_samples, self.gen_time, self.stats = st["gen_samples"], st["gen_time"], st["stats"]

    # -- helpers ---------------------------------------------------------------

    def tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.long).to(self.device)

    def generate(self, model, prompts: T.Prompts, gen: torch.Generator) -> np.ndarray:
        """Responses (N, R) as numpy, in chunks; counts toward samples/s."""
        t0 = time.perf_counter()
        out = [sample(model, self.tensor(prompts.tokens[i : i + CHUNK]), self.R, gen).cpu()
               for i in range(0, len(prompts), CHUNK)]
        self.gen_time += time.perf_counter() - t0
        self.gen_samples += len(prompts)
        return torch.cat(out).numpy()

    @torch.no_grad()
    def score(self, prompts: T.Prompts, resp: np.ndarray) -> np.ndarray:
        """Reward model r(x, y) (N,)."""
        seq = np.concatenate([prompts.tokens, resp], 1)
        return torch.cat([self.rm(self.tensor(seq[i : i + CHUNK]), self.P).float().cpu()
                          for i in range(0, len(seq), CHUNK)]).numpy()

    @torch.no_grad()
    def kl_to_ref(self, prompts: T.Prompts, resp: np.ndarray) -> float:
        """Monte-Carlo KL(pi || pi_SFT) on samples of pi: mean over sequences of sum_t log pi - log pi_SFT."""
        seq = self.tensor(np.concatenate([prompts.tokens, resp], 1))
        mask = response_mask(seq[:, self.P:])
        lp, _ = response_logprobs(self.policy, seq, self.P)
        lr, _ = response_logprobs(self.ref, seq, self.P)
        return float(((lp - lr) * mask).sum(1).mean())

    def prefs(self) -> dict:
        """Training pairs (noisy train pool, one judge each, 25% flips) and held-out pairs, both
        sampled from the SFT policy; a pure function of the SFT weights and the seed."""
        if self._prefs is None:
            c, out = self.cfg, {}
            for name, stream, n in (("train", PREFS, c["rm_pairs"]), ("heldout", HELDOUT, c["rm_heldout"])):
                rng = np_rng(c, stream)
                pr = T.sample_prompts(rng, n, c["max_digits"])
                a = self.generate(self.ref, pr, torch_gen(c, stream, 1))
                b = self.generate(self.ref, pr, torch_gen(c, stream, 2))
                qa, qb, la, lb = T.quality(pr, a), T.quality(pr, b), T.lengths(a), T.lengths(b)
                who = rng.integers(0, len(self.train_pool), size=n)
                y = A.annotate(self.train_pool, who, qa, qb, la, lb, rng, c["flip_prob"])
                out[name] = dict(prompts=pr, a=a, b=b, y=y, qa=qa, qb=qb, la=la, lb=lb)
            self._prefs = out
        return self._prefs

    # -- steps -----------------------------------------------------------------

    def step(self, s: int) -> dict:
        if s <= self.S1:
            return self.sft_step(s)
        if s <= self.S2:
            if self.rm is None:
                self.enter_rm_phase()
            return self.rm_step(s)
        if not self.in_rl:
            self.enter_rl_phase()
        return self.ppo_step(s) if self.cfg["method"] == "ppo" else self.ei_step(s)

    def lm_loss(self, prompts: T.Prompts, resp: np.ndarray) -> torch.Tensor:
        """Masked next-token cross-entropy on the response (incl. EOS)."""
        seq = self.tensor(np.concatenate([prompts.tokens, resp], 1))  # (B, P+R)
        logp, _ = response_logprobs(self.policy, seq, self.P)  # (B, R)
        mask = response_mask(seq[:, self.P:])
        return -(logp * mask).sum() / mask.sum()

    def _update(self, loss, model, opt) -> None:
        loss.backward()
        if self.cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.cfg["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sft_step(self, s: int) -> dict:
        c = self.cfg
        rng = np_rng(c, SFT, s)
        pr = T.sample_prompts(rng, c["batch_size"], c["max_digits"])
        loss = self.lm_loss(pr, T.demonstrations(pr, rng, c["max_filler"], c["max_digits"]))
        self._update(loss, self.policy, self.opt)
        return {"sft_loss": loss.item()}

    def rm_step(self, s: int) -> dict:
        c, d = self.cfg, self.prefs()["train"]
        idx = np_rng(c, RM, s).integers(0, len(d["y"]), size=c["batch_size"])
        pr = d["prompts"].take(idx)
        seq_a = self.tensor(np.concatenate([pr.tokens, d["a"][idx]], 1))
        seq_b = self.tensor(np.concatenate([pr.tokens, d["b"][idx]], 1))
        margin = self.rm(seq_a, self.P) - self.rm(seq_b, self.P)  # (B,) r(a) - r(b)
        sign = torch.as_tensor(2 * d["y"][idx] - 1, dtype=margin.dtype, device=margin.device)
        loss = -F.logsigmoid(sign * margin).mean()  # Bradley-Terry: P(a > b) = sigmoid(r_a - r_b)
        self._update(loss, self.rm, self.rm_opt)
        out = {"rm_loss": loss.item()}
        if s == self.S2:
            self.stats.update(self.rm_accuracy())
            out.update(self.stats)
        return out

    def rm_accuracy(self) -> dict:
        """Held-out pairs: agreement with the NOISELESS evaluation pool's preference (its expected
        choice; length bias included) and with true quality (ties excluded from each)."""
        d = self.prefs()["heldout"]
        self.rm.eval()
        margin = self.score(d["prompts"], d["a"]) - self.score(d["prompts"], d["b"])
        self.rm.train()
        p = A.expected_pref(self.eval_pool, d["qa"], d["qb"], d["la"], d["lb"])
        keep = np.abs(p - 0.5) > 1e-9
        keep_t = d["qa"] != d["qb"]
        return {"rm_acc": float(np.mean((margin > 0)[keep] == (p > 0.5)[keep])) if keep.any() else 0.5,
                "rm_acc_true": float(np.mean((margin > 0)[keep_t] == (d["qa"] > d["qb"])[keep_t])) if keep_t.any() else 0.5}

    def ei_step(self, s: int) -> dict:
        """Expert iteration: n samples per prompt from the current policy, keep the RM's best, fine-tune."""
        c, n = self.cfg, self.cfg["bon_n"]
        pr = T.sample_prompts(np_rng(c, RL, s), c["batch_size"], c["max_digits"])
        t0 = time.perf_counter()
        rep = pr.repeat(n)
        resp = self.generate(self.policy, rep, torch_gen(c, RL, s))  # (B*n, R)
        r = self.score(rep, resp).reshape(-1, n)  # (B, n)
        best = np.arange(len(pr)) * n + r.argmax(1)
        kl = self.kl_to_ref(rep, resp)
        loss = self.lm_loss(pr, resp[best])
        self._update(loss, self.policy, self.opt)
        return {"ei_loss": loss.item(), "mean_reward": float(r.mean()), "best_reward": float(r.max(1).mean()),
                "kl_to_sft": kl, "train_true_quality": float(T.quality(rep, resp).mean()),
                "mean_len": float(T.lengths(resp).mean()), "samples_per_s": len(rep) / (time.perf_counter() - t0)}

    def ppo_step(self, s: int) -> dict:
        """PPO with a per-token KL penalty to the SFT policy and a value head (GAE, gamma = 1).

        reward_t = -kl_coef * (log pi_old(y_t) - log pi_SFT(y_t)), plus the RM score at the last
        (EOS) token, as in Ziegler et al. / AlpacaFarm.
        """
        c, P = self.cfg, self.P
        pr = T.sample_prompts(np_rng(c, RL, s), c["batch_size"], c["max_digits"])
        t0 = time.perf_counter()
        resp = self.generate(self.policy, pr, torch_gen(c, RL, s))  # (B, R)
        seq = self.tensor(np.concatenate([pr.tokens, resp], 1))  # (B, P+R)
        mask = response_mask(seq[:, P:])  # (B, R)
        with torch.no_grad():
            old_logp, old_v = response_logprobs(self.policy, seq, P)  # (B, R) each
            ref_logp, _ = response_logprobs(self.ref, seq, P)
            score = self.rm(seq, P).float()  # (B,)
            kl = (old_logp - ref_logp) * mask  # (B, R)
            rewards = -c["kl_coef"] * kl
            last = mask.sum(1).long() - 1  # index of EOS (or of the last token)
            rewards[torch.arange(len(seq)), last] += score
            adv = torch.zeros_like(rewards)
            gae = torch.zeros(len(seq), device=seq.device)
            for t in reversed(range(self.R)):
                nxt_mask = mask[:, t + 1] if t + 1 < self.R else torch.zeros_like(gae)
                nxt_v = old_v[:, t + 1] * nxt_mask if t + 1 < self.R else torch.zeros_like(gae)
                delta = rewards[:, t] + nxt_v - old_v[:, t]
                gae = delta + c["gae_lambda"] * nxt_mask * gae
                adv[:, t] = gae
            adv = adv * mask
            returns = adv + old_v
            mean = (adv * mask).sum() / mask.sum()
            std = (((adv - mean) ** 2 * mask).sum() / mask.sum()).sqrt()
            adv_n = (adv - mean) / (std + 1e-8) * mask  # whitened over real tokens
        for _ in range(c["ppo_epochs"]):
            logp, v = response_logprobs(self.policy, seq, P)
            ratio = torch.exp(logp - old_logp)
            pg = -torch.min(ratio * adv_n, ratio.clamp(1 - c["clip"], 1 + c["clip"]) * adv_n)
            vf = (v - returns) ** 2
            loss = ((pg + c["vf_coef"] * vf) * mask).sum() / mask.sum()
            self._update(loss, self.policy, self.opt)
        return {"ppo_loss": loss.item(), "mean_reward": float(score.mean()), "kl_to_sft": float(kl.sum(1).mean()),
                "train_true_quality": float(T.quality(pr, resp).mean()), "mean_len": float(T.lengths(resp).mean()),
                "samples_per_s": len(pr) / (time.perf_counter() - t0)}

    def best_of_n(self, model, prompts: T.Prompts, n: int, gen: torch.Generator, scorer) -> np.ndarray:
        """n samples per prompt, keep the one scorer(prompts, responses) -> (N,) rates highest: (N, R)."""
        rep = prompts.repeat(n)
        cand = self.generate(model, rep, gen)  # (N*n, R), prompt i's samples at rows i*n .. i*n+n-1
        best = np.arange(len(prompts)) * n + np.asarray(scorer(rep, cand)).reshape(-1, n).argmax(1)
        return cand[best]

    # -- evaluation --------------------------------------------------------------

    def evaluate(self) -> dict:
        """The method's outputs vs the SFT reference's on n_eval fresh instructions, judged by every
        member of the evaluation pool (no flips, eval_length_bias)."""
        c = self.cfg
        pr = T.sample_prompts(np_rng(c, EVAL), c["n_eval"], c["max_digits"])
        ref_out = self.generate(self.ref, pr, torch_gen(c, EVAL_REF))
        if c["method"] == "best_of_n":
            n = c["bon_n"]
            out = self.best_of_n(self.ref, pr, n, torch_gen(c, EVAL_MODEL), self.score)
            kl = float(np.log(n) - (n - 1) / n)  # the analytic KL of best-of-n (Stiennon et al.)
        else:
            policy = self.ref if c["method"] == "sft" else self.policy
            out = self.generate(policy, pr, torch_gen(c, EVAL_MODEL))  # a fresh sample for sft too
            kl = 0.0 if c["method"] == "sft" else self.kl_to_ref(pr, out)
        q_m, q_r, l_m, l_r = T.quality(pr, out), T.quality(pr, ref_out), T.lengths(out), T.lengths(ref_out)
        y, idx = A.annotate_all(self.eval_pool, q_m, q_r, l_m, l_r, np_rng(c, EVAL_ANN))
        res = lc_eval.win_rates(y, idx, pr.group(), l_m, l_r, q_m, q_r)
        res.update(true_quality=float(q_m.mean()), ref_true_quality=float(q_r.mean()), mean_len=float(l_m.mean()),
                   ref_mean_len=float(l_r.mean()), mean_reward=float(self.score(pr, out).mean()),
                   ref_mean_reward=float(self.score(pr, ref_out).mean()), kl_to_sft=kl)
        return res



def train(cfg: dict, ctx) -> None:
    device = pick_device(cfg["device"])
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)  # same numbers twice and across a resume
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
    run = Run(cfg, device)
    ctx.use_checkpoints(CheckpointStore(
        ctx.env.checkpoint_dir, suffix=".pt", save=lambda state, f: torch.save(state, f),
        # weights_only=False: torch >= 2.6 refuses the envelope's plain Python objects otherwise;
        # the files are this trial's own.
        load=lambda f: torch.load(f, map_location="cpu", weights_only=False)))
    meta = {"device": str(device), "torch": torch.__version__}
    start = 0
    resumed = ctx.load_checkpoint()
    if resumed is not None:
        st, start = resumed
        run.load(st)
        if st["result"] is not None:  # finished before; only the result push failed
            ctx.report_result(st["result"], meta=meta)
            return

    for s in range(start + 1, run.S3 + 1):
        if ctx.stop_requested():
            ctx.stop(run.state(s - 1), s - 1)  # checkpoint the completed step, exit 143
        values = run.step(s)
        require_finite_losses(s, values)
        ctx.log_many(s, values)
        if cfg["step_sleep"]:
            time.sleep(cfg["step_sleep"])
        if cfg["checkpoint_every"] and s % cfg["checkpoint_every"] == 0 and s < run.S3:
            ctx.save_checkpoint(run.state(s), s)

    res = run.evaluate()
    ctx.log_many(run.S3, {("eval_" + k if k in ("mean_reward", "kl_to_sft", "mean_len") else k): v for k, v in res.items()})
    res.update(run.stats)
    res.update(samples_per_s=run.gen_samples / max(run.gen_time, 1e-9), n_params=n_params(run.policy),
               n_params_rm=n_params(run.rm), steps=run.S3, peak_mem_mb=peak_mem_mb(device))
    ctx.save_checkpoint(run.state(run.S3, result=res), run.S3)  # a retry after a failed push need not retrain
    ctx.report_result(res, meta=meta)

