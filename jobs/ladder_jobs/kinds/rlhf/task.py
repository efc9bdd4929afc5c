"""The synthetic instruction-following task: instructions with checkable answers.

A prompt is an instruction over a few digits, e.g. `SORT 3 1 2` -> `1 2 3`. Because the answer
is checkable, the simulator knows a hidden TRUE quality of every response (the AlpacaFarm
"gold" that real RLHF never sees). Responses may carry FILLER tokens ("um", "well", "so"):
they make an answer longer without making it better, which is exactly what a length-biased
annotator rewards and what length-controlled evaluation has to see through.

Layout (fixed shapes, so batches need no attention masks):
    prompt   (P,) = PAD.. BOS OP d1 .. dk SEP    left-padded to P = max_digits + 3
    response (R,) = a1 .. am [filler..] EOS PAD..  right-padded to R = max_digits + max_filler + 1
Tokens after the first EOS are PAD and never count. Pure numpy / Python: no torch here.
"""

from __future__ import annotations

import numpy as np

PAD, BOS, SEP, EOS = 0, 1, 2, 3
DIGIT0 = 4  # digits 0..9 are tokens 4..13
OPS = ("copy", "reverse", "sort", "max", "sum")  # sum = sum of the digits mod 10 (one token)
OP0 = 14  # op tokens 14..18
FILLERS = (19, 20, 21)  # "um", "well", "so": carry no content
VOCAB = 22


def prompt_len(max_digits: int) -> int:
    return max_digits + 3  # BOS OP digits SEP


def response_len(max_digits: int, max_filler: int) -> int:
    return max_digits + max_filler + 1  # longest answer + filler + EOS


def answer(op: int, digits: list[int]) -> list[int]:
    """The correct answer (digit values, not tokens) of instruction `op` on `digits`."""
    name = OPS[op]
    if name == "copy":
        return list(digits)
    if name == "reverse":
        return list(reversed(digits))
    if name == "sort":
        return sorted(digits)
    if name == "max":
        return [max(digits)]
    return [sum(digits) % 10]


class Prompts:
    """A batch of instructions: op (N,), n_digits (N,), digits (list of lists), tokens (N, P)."""

    def __init__(self, ops: np.ndarray, digits: list[list[int]], max_digits: int):
        self.ops, self.digits, self.max_digits = ops, digits, max_digits
        self.n_digits = np.array([len(d) for d in digits])
        P = prompt_len(max_digits)
        tok = np.full((len(digits), P), PAD, dtype=np.int64)
        for i, (op, d) in enumerate(zip(ops, digits)):
            seq = [BOS, OP0 + int(op)] + [DIGIT0 + x for x in d] + [SEP]
            tok[i, P - len(seq):] = seq  # right-aligned: the response always starts at index P
        self.tokens = tok
        self.answers = [answer(int(op), d) for op, d in zip(ops, digits)]

    def __len__(self) -> int:
        return len(self.digits)

    def group(self) -> np.ndarray:
        """Instruction group (op, n_digits) as one int: the unit of instruction difficulty."""
        return self.ops * 100 + self.n_digits

    def repeat(self, n: int) -> "Prompts":
        """Each prompt n times in a row (for best-of-n): (N*n,)."""
        idx = np.repeat(np.arange(len(self)), n)
        return self.take(idx)

    def take(self, idx: np.ndarray) -> "Prompts":
        return Prompts(self.ops[idx], [self.digits[i] for i in idx], self.max_digits)


def sample_prompts(rng: np.random.Generator, n: int, max_digits: int) -> Prompts:
    ops = rng.integers(0, len(OPS), size=n)
    lens = rng.integers(2, max_digits + 1, size=n)
    digits = [rng.integers(0, 10, size=k).tolist() for k in lens]
    return Prompts(ops, digits, max_digits)


def demonstrations(prompts: Prompts, rng: np.random.Generator, max_filler: int, max_digits: int) -> np.ndarray:
    """SFT targets (N, R): the correct answer, then 0..max_filler random filler tokens, then EOS.

    The random filler gives the SFT policy a spread of lengths, so a length-biased reward model
    has something to exploit (the verbosity drift that AlpacaFarm and LC-AlpacaEval observe).
    """
    R = response_len(max_digits, max_filler)
    out = np.full((len(prompts), R), PAD, dtype=np.int64)
    n_fill = rng.integers(0, max_filler + 1, size=len(prompts))
    fill = rng.choice(FILLERS, size=(len(prompts), max(max_filler, 1)))
    for i, ans in enumerate(prompts.answers):
        seq = [DIGIT0 + a for a in ans] + fill[i, : n_fill[i]].tolist() + [EOS]
        out[i, : len(seq)] = seq
    return out


def clean(resp: np.ndarray) -> np.ndarray:
    """Zero (PAD) every token after the first EOS, in place semantics on a copy: (N, R)."""
    resp = resp.copy()
    is_eos = resp == EOS
    after = np.cumsum(is_eos, axis=1) - is_eos > 0  # strictly after the first EOS
    resp[after] = PAD
    return resp


def lengths(resp: np.ndarray) -> np.ndarray:
    """Response length in tokens before the first EOS (R if none): what annotators see. (N,)"""
    is_eos = resp == EOS
    has = is_eos.any(axis=1)
    first = np.where(has, is_eos.argmax(axis=1), resp.shape[1])
    return first.astype(np.float64)


def quality(prompts: Prompts, resp: np.ndarray) -> np.ndarray:
    """TRUE quality in [0, 1] (N,): position-wise digit matches / max(len(answer), len(digits said)).

    Filler is dropped before scoring (verbosity neither helps nor hurts), non-digit tokens other
    than filler (BOS, SEP, ops) count as wrong content; a response cut off without EOS is scored
    on what it said.
    """
    L = lengths(resp).astype(int)
    q = np.zeros(len(prompts))
    for i, ans in enumerate(prompts.answers):
        said = [t for t in resp[i, : L[i]].tolist() if t not in FILLERS]
        if not said:
            continue
        hits = sum(1 for a, t in zip(ans, said) if t == DIGIT0 + a)
        q[i] = hits / max(len(ans), len(said))
    return q


def add_filler(resp: np.ndarray, n_fill: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Insert n_fill[i] filler tokens before EOS (truncated to R): same answer, more words."""
    out = np.full_like(resp, PAD)
    L = lengths(resp).astype(int)
    R = resp.shape[1]
    for i in range(len(resp)):
        seq = resp[i, : L[i]].tolist() + rng.choice(FILLERS, size=int(n_fill[i])).tolist()
        seq = seq[: R - 1] + [EOS]
        out[i, : len(seq)] = seq
    return out
