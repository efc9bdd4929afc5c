"""Win rates: raw, length-controlled (Dubois et al., Length-Controlled AlpacaEval) and true.

LC-AlpacaEval fits, on the annotations of model m against the baseline b, the GLM
    logit P(m > b | x) = theta + phi * tanh(dlen / sd(dlen)) + psi * gamma_x
    theta    model identity (how much better m is at equal length)
    phi      the length term: tanh of the length difference standardised by its std, so one very
             long answer cannot dominate the fit
    gamma_x  instruction difficulty, psi its weight for this model
and reports the LC win rate = mean_x sigmoid(theta + psi * gamma_x): the counterfactual "what if
both outputs had the same length" (length term set to zero).

gamma_x: the paper precomputes it from all leaderboard models. We have one comparison, so we use
the centred empirical log-odds of the model's wins on the instruction's group (op, n_digits),
smoothed by 0.5: same role (hard instructions shift the odds for everyone), computed from the data.
The fit is plain (unpenalised) logistic regression by IRLS / Newton in numpy float64; the
standard errors come from the inverse Fisher information (tests use them as tolerance).
"""

from __future__ import annotations

import numpy as np

RIDGE = 1e-8  # keeps the Newton step defined when a feature is constant (e.g. gamma all zero)


def fit_logistic(X: np.ndarray, y: np.ndarray, iters: int = 50, tol: float = 1e-10):
    """Unpenalised logistic regression. X (N, K), y (N,) in {0,1}. Returns (coef (K,), se (K,))."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    N, K = X.shape
    w = np.zeros(K)
    for _ in range(iters):
        z = np.clip(X @ w, -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        W = p * (1 - p)  # (N,)
        H = X.T @ (X * W[:, None]) + RIDGE * np.eye(K)  # Fisher information (K, K)
        step = np.linalg.solve(H, X.T @ (y - p))
        # Newton can overshoot on (near-)separable data; halve the step if it does.
        ll = lambda v: float(np.sum(y * np.clip(X @ v, -30, 30) - np.logaddexp(0, np.clip(X @ v, -30, 30))))
        base, t = ll(w), 1.0
        while ll(w + t * step) < base - 1e-12 and t > 1e-4:
            t /= 2
        w = w + t * step
        if np.max(np.abs(t * step)) < tol:
            break
    z = np.clip(X @ w, -30, 30)
    p = 1.0 / (1.0 + np.exp(-z))
    H = X.T @ (X * (p * (1 - p))[:, None]) + RIDGE * np.eye(K)
    se = np.sqrt(np.clip(np.diag(np.linalg.inv(H)), 0, None))
    return w, se


def difficulty(groups: np.ndarray, y: np.ndarray) -> np.ndarray:
    """gamma per row (N,): centred smoothed log-odds of y within the row's instruction group."""
    gamma = np.zeros(len(y))
    for g in np.unique(groups):
        m = groups == g
        wins = y[m].sum()
        gamma[m] = np.log((wins + 0.5) / (m.sum() - wins + 0.5))
    return gamma - gamma.mean()


def glm_features(dlen: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """(N, 3): [1, tanh(dlen / sd(dlen)), gamma]."""
    sd = float(np.std(dlen))
    t = np.tanh(dlen / sd) if sd > 0 else np.zeros_like(dlen, dtype=np.float64)
    return np.stack([np.ones(len(dlen)), t, gamma], axis=1)


def lc_win_rate(y: np.ndarray, dlen: np.ndarray, gamma: np.ndarray) -> dict:
    """Fit the GLM on annotations y (N,) with length differences dlen = len_model - len_ref (N,)."""
    X = glm_features(np.asarray(dlen, dtype=np.float64), np.asarray(gamma, dtype=np.float64))
    (theta, phi, psi), _ = fit_logistic(X, y)
    lc = 1.0 / (1.0 + np.exp(-(theta + psi * X[:, 2])))  # length term set to zero
    return {"lc_win_rate": float(lc.mean()), "lc_theta": float(theta), "lc_phi": float(phi), "lc_psi": float(psi)}


def win_rates(y: np.ndarray, idx: np.ndarray, groups: np.ndarray, len_m, len_r, q_m, q_r) -> dict:
    """Raw, LC and true win rates of a model against the reference.

    y (N*J,) annotations (1 = model preferred) of instructions idx (N*J,); groups (N,) instruction
    groups; len_*, q_* (N,) lengths and true qualities of model and reference outputs.
    """
    len_m, len_r, q_m, q_r = (np.asarray(v, dtype=np.float64) for v in (len_m, len_r, q_m, q_r))
    dlen = (len_m - len_r)[idx]
    out = {"win_rate": float(np.mean(y))}
    out.update(lc_win_rate(y, dlen, difficulty(groups[idx], y)))
    # The simulator's ground truth: which output is actually more correct (ties count half).
    out["true_win_rate"] = float(np.mean((q_m > q_r) + 0.5 * (q_m == q_r)))
    return out
