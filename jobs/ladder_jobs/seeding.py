"""Seeds that are the same in every process, for per-step RNGs.

A kind seeds each step's RNG from (seed, stream, step) rather than drawing from one running
stream, so a run that was killed and resumed draws exactly what an uninterrupted run would.
Python's hash() is salted per process, hence this mix (splitmix64, as in Java's SplittableRandom).
"""

from __future__ import annotations

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def stable_seed(*parts: int) -> int:
    """A 64-bit seed from integers that is the same in every process (unlike the salted hash())."""
    h = 0
    for p in parts:
        h = _splitmix64(h ^ (p & _MASK64))
    return h


def torch_seed(*parts: int) -> int:
    """stable_seed folded into the 63 bits torch.manual_seed / Generator.manual_seed accept."""
    return stable_seed(*parts) & (2**63 - 1)
