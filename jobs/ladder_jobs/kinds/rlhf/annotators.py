"""Simulated annotators (AlpacaFarm): a pool of pairwise judges with different noise and biases.

Annotator j shown response A first and B second prefers A with probability
    sigmoid( (w * (q_A - q_B) + lb_j * (len_A - len_B) + pb_j) / temp_j )
    q     TRUE quality in [0, 1] (what a judge is trying to measure)
    len   response length in tokens: the LENGTH BIAS lb_j > 0 prefers longer outputs
    pb_j  position bias: + prefers the first-shown response, - the second
    temp_j noise: the larger, the closer to a coin flip
The pool spreads the knobs around their means (0.5x .. 1.5x), as AlpacaFarm's pool mixes judges
of different quality. TRAINING feedback: one random judge of the pool per pair, then the label is
flipped with probability flip_prob (AlpacaFarm: 25%, to match human inter-annotator variance).
EVALUATION: every judge of the pool, no flips ("noiseless" in AlpacaFarm's sense) but with its
own length bias (eval_length_bias), because real evaluators have one - which is why the LC win
rate exists. Pure numpy.
"""

from __future__ import annotations

import numpy as np


def make_pool(n: int, length_bias: float, temp: float, position_bias: float, quality_weight: float) -> list[dict]:
    spread = [1.0] if n == 1 else [0.5 + j / (n - 1) for j in range(n)]  # 0.5x .. 1.5x
    return [
        {
            "quality_weight": quality_weight,
            "length_bias": length_bias * spread[j],
            "temp": temp * spread[::-1][j],  # the most length-biased judge is the least noisy
            "position_bias": position_bias * (1 if j % 2 == 0 else -1),
        }
        for j in range(n)
    ]


def _logit(a: dict, q_first, q_second, l_first, l_second):
    z = a["quality_weight"] * (q_first - q_second) + a["length_bias"] * (l_first - l_second) + a["position_bias"]
    return z / a["temp"]


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def annotate(pool: list[dict], who: np.ndarray, q_a, q_b, len_a, len_b, rng: np.random.Generator,
             flip_prob: float = 0.0) -> np.ndarray:
    """One label per pair (N,): 1.0 if judge pool[who[i]] prefers A. Order of display is random."""
    q_a, q_b, len_a, len_b = (np.asarray(x, dtype=np.float64) for x in (q_a, q_b, len_a, len_b))
    a_first = rng.random(len(who)) < 0.5
    p_first = np.empty(len(who))
    for j, a in enumerate(pool):
        m = who == j
        p_first[m] = _sigmoid(_logit(a, np.where(a_first, q_a, q_b)[m], np.where(a_first, q_b, q_a)[m],
                                     np.where(a_first, len_a, len_b)[m], np.where(a_first, len_b, len_a)[m]))
    first_wins = rng.random(len(who)) < p_first
    y = np.where(a_first, first_wins, ~first_wins)
    flip = rng.random(len(who)) < flip_prob
    return np.where(flip, ~y, y).astype(np.float64)


def expected_pref(pool: list[dict], q_a, q_b, len_a, len_b) -> np.ndarray:
    """P(A preferred) averaged over the pool and both display orders (N,): the noiseless preference."""
    p = np.zeros(len(np.atleast_1d(q_a)))
    for a in pool:
        p += _sigmoid(_logit(a, q_a, q_b, len_a, len_b)) + 1.0 - _sigmoid(_logit(a, q_b, q_a, len_b, len_a))
    return p / (2 * len(pool))


def annotate_all(pool: list[dict], q_m, q_r, len_m, len_r, rng: np.random.Generator):
    """Evaluation: every judge labels every (model, reference) pair, no flips.

    Returns (y, idx): y (N*J,) 1.0 = model output preferred, idx (N*J,) the instruction index.
    """
    N, J = len(q_m), len(pool)
    idx = np.repeat(np.arange(N), J)
    who = np.tile(np.arange(J), N)
    take = lambda x: np.asarray(x, dtype=np.float64)[idx]
    return annotate(pool, who, take(q_m), take(q_r), take(len_m), take(len_r), rng, 0.0), idx
