"""Win rates: raw, length-controlled (Dubois et al., Length-Controlled AlpacaEval) and true.

LC-AlpacaEval fits, per evaluated model m on its annotations against the baseline b, the GLM
    logit P(m > b | x) = theta + phi * tanh(dlen / sd(dlen)) + psi * gamma_x
    theta    model identity (how much better m is at equal length)
    phi      the length term: tanh of the length difference standardised by its sample std
             (ddof = 1, as pandas' .std() in alpaca_eval), so one very long answer cannot dominate
    gamma_x  instruction difficulty, psi its weight for this model
and reports the LC win rate = mean_x sigmoid(theta + psi * gamma_x): the counterfactual "what if
both outputs had the same length" (length term set to zero). dlen = len_model - len_baseline
here (alpaca_eval uses the opposite sign; only phi's sign differs, the LC win rate does not).

Three fittings, named after alpaca_eval's GLM configs, and every reported number says which one
produced it:
    length_controlled_v1       alpaca_eval's default: L1 penalty on ALL coefficients, the intercept
                               included (it is a column of ones, fit_intercept=False), C chosen from
                               LogisticRegressionCV's default grid by 5-fold CV grouped by
                               instruction (liblinear, random_state 123). alpaca_eval additionally
                               regularises towards two "gamed" baselines' annotations, which exist
                               only for its own leaderboard; here there are none.
    length_controlled_minimal  the same fitting without the difficulty term.
    length_controlled_noreg    the unpenalised maximum-likelihood fit (Ladder's earlier fitting).
                               NB: alpaca_eval's config of that name keeps the L1/CV fit and only
                               drops the gamed-baseline regularisation, i.e. it equals v1 here.
Labels may be soft (alpaca_eval's preference in [1, 2] -> p in [0, 1]); as alpaca_eval does, each
annotation becomes two rows (label 1 with weight p, label 0 with weight 1 - p) kept in one fold.

gamma_x: the paper precomputes it from all leaderboard models on the same instructions. Here it is
the centred, 0.5-smoothed log-odds of the wins of ALL policies judged on the instruction (or its
difficulty group), so one model's own length effect is diluted by the others'. With a single
policy it degenerates to the model's own labels; `difficulty_policies` in the results says how
many policies it was pooled over.

scikit-learn (LogisticRegression) is needed for v1 / minimal; it is imported only when they run.
"""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np

from ladder_jobs.kinds.rlhf import DEFAULT_GLM, GLMS

SHORT = {"length_controlled_v1": "v1", "length_controlled_noreg": "noreg", "length_controlled_minimal": "minimal"}
CV_SPLITS = 5
CS = np.logspace(-4, 4, 10)  # LogisticRegressionCV(Cs=10), what alpaca_eval leaves at its default
CV_RANDOM_STATE = 123  # alpaca_eval's; liblinear's L1 solver visits coordinates in a random order
RIDGE = 1e-8  # keeps the Newton step defined when a feature is constant (e.g. gamma all zero)


def fit_logistic(X: np.ndarray, y: np.ndarray, iters: int = 50, tol: float = 1e-10):
    """Unpenalised logistic regression. X (N, K), y (N,) in [0, 1] (soft labels allowed).
    Returns (coef (K,), se (K,))."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    K = X.shape[1]
    w = np.zeros(K)

    def loglik(v):
        z = np.clip(X @ v, -30, 30)
        return float(np.sum(y * z - np.logaddexp(0, z)))

    for _ in range(iters):
        z = np.clip(X @ w, -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        H = X.T @ (X * (p * (1 - p))[:, None]) + RIDGE * np.eye(K)  # Fisher information (K, K)
        step = np.linalg.solve(H, X.T @ (y - p))
        # Newton can overshoot on (near-)separable data; halve the step if it does.
        base, t = loglik(w), 1.0
        while loglik(w + t * step) < base - 1e-12 and t > 1e-4:
            t /= 2
        w = w + t * step
        if np.max(np.abs(t * step)) < tol:
            break
    z = np.clip(X @ w, -30, 30)
    p = 1.0 / (1.0 + np.exp(-z))
    H = X.T @ (X * (p * (1 - p))[:, None]) + RIDGE * np.eye(K)
    se = np.sqrt(np.clip(np.diag(np.linalg.inv(H)), 0, None))
    return w, se


def _soft_log_loss(p: np.ndarray, q: np.ndarray) -> float:
    q = np.clip(q, 1e-15, 1 - 1e-15)
    return float(-np.mean(p * np.log(q) + (1 - p) * np.log(1 - q)))


def fit_l1_cv(X: np.ndarray, p: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, float]:
    """alpaca_eval's fitting: L1 logistic regression without a separate intercept, C by grouped
    k-fold CV on the (soft) log loss, then refitted on everything. Returns (coef (K,), C)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    X, p = np.asarray(X, dtype=np.float64), np.asarray(p, dtype=np.float64)
    n = len(p)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"the cross-validated GLM needs annotations on at least 2 instructions, got {n_groups}")
    Xd = np.concatenate([X, X])
    yd = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
    wd = np.concatenate([p, 1 - p])
    gd = np.concatenate([groups, groups])

    def fit(C, rows):
        return LogisticRegression(penalty="l1", solver="liblinear", C=C, fit_intercept=False, dual=False,
                                  random_state=CV_RANDOM_STATE).fit(Xd[rows], yd[rows], sample_weight=wd[rows])

    # liblinear's max_iter (100) is the reference's; its non-convergence warnings are not the user's to act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        folds = list(GroupKFold(n_splits=min(CV_SPLITS, n_groups)).split(Xd, yd, gd))
        losses = np.zeros(len(CS))
        for train, test in folds:
            fold = test[test < n]  # the label-1 copy of each held-out annotation carries p
            for i, C in enumerate(CS):
                losses[i] += _soft_log_loss(p[fold], fit(C, train).predict_proba(X[fold])[:, 1])
        best = float(CS[int(np.argmin(losses))])  # first of equals, as LogisticRegressionCV's argmax
        return fit(best, np.arange(2 * n)).coef_[0].astype(np.float64), best


def length_feature(dlen: np.ndarray) -> np.ndarray:
    dlen = np.asarray(dlen, dtype=np.float64)
    sd = float(np.std(dlen, ddof=1)) if len(dlen) > 1 else 0.0
    return np.tanh(dlen / sd) if sd > 0 else np.zeros_like(dlen)


def difficulty(keys: np.ndarray, y: np.ndarray) -> np.ndarray:
    """gamma per row (N,): centred 0.5-smoothed log-odds of the wins y (N,) in [0, 1] of all rows
    (of every policy passed) that share the row's instruction key."""
    keys, y = np.asarray(keys), np.asarray(y, dtype=np.float64)
    uniq, inv = np.unique(keys, return_inverse=True)
    wins = np.bincount(inv, weights=y, minlength=len(uniq))
    count = np.bincount(inv, minlength=len(uniq))
    per_key = np.log((wins + 0.5) / (count - wins + 0.5))
    gamma = per_key[inv]
    return gamma - gamma.mean()


def glm_features(dlen: np.ndarray, gamma: np.ndarray | None) -> np.ndarray:
    """(N, 3) [1, tanh(dlen / sd), gamma], or (N, 2) without gamma."""
    cols = [np.ones(len(dlen)), length_feature(dlen)]
    if gamma is not None:
        cols.append(np.asarray(gamma, dtype=np.float64))
    return np.stack(cols, axis=1)


def lc_win_rate(p: np.ndarray, dlen: np.ndarray, gamma: np.ndarray, groups: np.ndarray,
                glm: str = DEFAULT_GLM) -> dict:
    """Fit GLM `glm` on preferences p (N,) in [0, 1] (1 = model preferred), length differences
    dlen = len_model - len_baseline (N,), difficulty gamma (N,), CV groups = instructions (N,)."""
    if glm not in GLMS:
        raise ValueError(f"glm must be one of {', '.join(GLMS)}, got {glm!r}")
    p = np.asarray(p, dtype=np.float64)
    X = glm_features(dlen, None if glm == "length_controlled_minimal" else gamma)
    C = float("inf")
    if glm == "length_controlled_noreg":
        coef, _ = fit_logistic(X, p)
    else:
        coef, C = fit_l1_cv(X, p, np.asarray(groups))
    X0 = X.copy()
    X0[:, 1] = 0.0  # equal lengths
    lc = 1.0 / (1.0 + np.exp(-(X0 @ coef)))
    return {"lc_win_rate": float(lc.mean()), "lc_theta": float(coef[0]), "lc_phi": float(coef[1]),
            "lc_psi": float(coef[2]) if len(coef) > 2 else 0.0, "lc_C": C}


def win_rates(y: np.ndarray, idx: np.ndarray, groups: np.ndarray, len_m, len_r, q_m, q_r, glm: str = DEFAULT_GLM,
              pooled: list[np.ndarray] | None = None) -> dict:
    """Raw, LC (every GLM) and true win rates of a model against the reference.

    y (N*J,) annotations (1 = model preferred) of instructions idx (N*J,); groups (N,) instruction
    difficulty groups; len_*, q_* (N,) lengths and true qualities of model and reference outputs.
    pooled: the annotations (N*J,) of other policies judged on the same (idx) instructions, used
    only to estimate difficulty. Keys: lc_win_rate is `glm`'s; lc_win_rate_<v1|noreg|minimal>
    and lc_<theta|phi|psi|C>_<...> name their GLM.
    """
    len_m, len_r, q_m, q_r = (np.asarray(v, dtype=np.float64) for v in (len_m, len_r, q_m, q_r))
    dlen = (len_m - len_r)[idx]
    others = list(pooled or [])
    keys = np.concatenate([groups[idx]] * (1 + len(others)))
    gamma = difficulty(keys, np.concatenate([y, *others]))[: len(y)]
    out = {"win_rate": float(np.mean(y)), "difficulty_policies": 1 + len(others)}
    for name in GLMS:
        fit = lc_win_rate(y, dlen, gamma, idx, name)
        out.update({f"{k}_{SHORT[name]}": v for k, v in fit.items() if not (k == "lc_C" and name == "length_controlled_noreg")})
        if name == glm:
            out.update({k: v for k, v in fit.items() if k != "lc_C"})
    # The simulator's ground truth: which output is actually more correct (ties count half).
    out["true_win_rate"] = float(np.mean((q_m > q_r) + 0.5 * (q_m == q_r)))
    return out


# -- a trial's annotations, kept so that a sweep can pool difficulty over its trials -----------------
# (`npx ladder lc-winrate SWEEP` turns them into alpaca_eval records for lc_file.)

ANNOTATIONS_FORMAT = 1
# n_eval * judges kept at most: about 330 KB of JSON, a third of the ingest's 1 MiB result body
# (the l preset keeps 4096 * 4 = 16384, about 165 KB; xs about 10 KB). Beyond it the record says so and keeps nothing, since a
# prefix would be judged on other instructions than the trial's own figures.
MAX_KEPT_ANNOTATIONS = 32_768
ID_HEX = 12  # 48 bits: a collision among a sweep's ~1e4 instructions has odds of about 1e-7


def instruction_ids(prompt_tokens: np.ndarray, ref_tokens: np.ndarray, judges: list[dict]) -> list[str]:
    """A stable identity per evaluation instruction (N,), equal across trials exactly when their
    annotations of it are comparable: the same prompt, the same reference output (it depends on the
    SFT settings and the device, not only the seed) and the same judges. The k-th repeat of a
    (prompt, reference) pair within the set gets k in its hash, so repeats stay apart as they do
    in the trial's own fit."""
    judges_key = json.dumps(judges, sort_keys=True).encode()
    seen: dict[bytes, int] = {}
    out = []
    for prompt, ref in zip(np.asarray(prompt_tokens, dtype=np.int64), np.asarray(ref_tokens, dtype=np.int64)):
        content = prompt.tobytes() + b"|" + ref.tobytes()
        k = seen.get(content, 0)
        seen[content] = k + 1
        out.append(hashlib.sha256(judges_key + b"|" + content + b"|" + str(k).encode()).hexdigest()[:ID_HEX])
    return out


def _compact(values) -> list:
    """JSON numbers as short as the value allows: whole numbers as ints, others to 4 decimals."""
    return [int(v) if float(v).is_integer() else round(float(v), 4) for v in np.asarray(values, dtype=np.float64)]


def annotation_record(ids: list[str], groups, len_m, len_r, y, judges: int) -> dict:
    """Columns of a trial's evaluation annotations: per instruction i its identity, difficulty group
    and the model's and reference's lengths; preference[i * judges + j] is judge j's label on it
    (1 = model preferred), the row order of annotators.annotate_all and of the trial's fit."""
    n = len(ids)
    if n * judges > MAX_KEPT_ANNOTATIONS:
        return {"format": ANNOTATIONS_FORMAT,
                "omitted": f"n_eval * judges = {n * judges} is over the {MAX_KEPT_ANNOTATIONS} annotations kept"}
    y = np.asarray(y, dtype=np.float64)
    if len(y) != n * judges:
        raise ValueError(f"expected {n} * {judges} preferences, got {len(y)}")
    return {"format": ANNOTATIONS_FORMAT, "judges": int(judges), "instruction": list(ids), "group": _compact(groups),
            "length_model": _compact(len_m), "length_ref": _compact(len_r), "preference": _compact(y)}
