"""Data for the `ttt` kind: no downloads, byte-level tokens (vocab 256), a pure function of (seed, step).

    text    licence and copyright texts Debian installs (/usr/share/common-licenses/*,
            /usr/share/doc/*/copyright), deduplicated by content, read up to `corpus_bytes`.
            Falls back to `markov` (with a note on stderr) when none are found.
    recall  associative recall over long sequences: each sequence draws a random map from
            `recall_keys` keys (tokens 0..127) to values (tokens 128..255) and is a stream of
            (key, value) pairs with keys drawn uniformly. A value is predictable only if its key
            appeared earlier in the sequence, so the loss falls with the token position.
    markov  a first-order Markov source over 256 states whose transition rows are Zipfian
            (p_i ~ i^-markov_zipf over a per-row random permutation), the chain fixed by the seed.

Determinism: a training batch is generated from a generator seeded by (seed, step), never from
one RNG stream, so a run resumed at step s sees exactly the batches an uninterrupted run would,
and the checkpoint needs no data-loader state. The validation set is fixed by the seed; for text
the corpus is cut into sequences and a seeded permutation assigns them to train or val.
"""

from __future__ import annotations

import glob
import hashlib
import sys

import numpy as np
import torch

from ladder_jobs.seeding import stable_seed

VOCAB = 256
TEXT_GLOBS = ("/usr/share/common-licenses/*", "/usr/share/doc/*/copyright")
VAL_FRACTION = 0.1  # of the text corpus' sequences
STREAM_TRAIN, STREAM_VAL, STREAM_SOURCE = 1, 2, 3  # seeds of the independent random streams


def read_corpus(max_bytes: int) -> bytes:
    """Concatenated, deduplicated Debian licence texts, at most max_bytes (b"" when none)."""
    seen, parts, total = set(), [], 0
    for pattern in TEXT_GLOBS:
        for path in sorted(glob.glob(pattern)):  # sorted: the same corpus on every run
            try:
                with open(path, "rb") as f:
                    data = f.read(max_bytes)
            except OSError:  # directories, unreadable files
                continue
            digest = hashlib.sha1(data).digest()
            if not data or digest in seen:  # the GPL ships in many copies; keep one
                continue
            seen.add(digest)
            parts.append(data)
            total += len(data)
            if total >= max_bytes:
                return b"".join(parts)[:max_bytes]
    return b"".join(parts)


class Data:
    """get_batch(step) -> (x, y) int64 (B, T) for training; val_batches() -> the fixed validation set."""

    def __init__(self, cfg: dict):
        self.kind, self.seed = cfg["data"], cfg["seed"]
        self.B, self.T = cfg["batch_size"], cfg["seq_len"]
        self.cfg = cfg
        if self.kind == "text":
            corpus = read_corpus(cfg["corpus_bytes"])
            n_seq = len(corpus) // (self.T + 1)
            if n_seq < 10:
                print("ladder_jobs: ttt: no text corpus found, using data=markov", file=sys.stderr)
                self.kind = "markov"
            else:
                arr = np.frombuffer(corpus[: n_seq * (self.T + 1)], dtype=np.uint8).reshape(n_seq, self.T + 1)
                perm = np.random.default_rng(stable_seed(self.seed, STREAM_SOURCE)).permutation(n_seq)
                n_val = max(1, int(n_seq * VAL_FRACTION))
                self.val_rows = torch.from_numpy(arr[perm[:n_val]].astype(np.int64))  # (n_val, T+1)
                # training windows start anywhere in the train sequences' span, so their text is
                # never in a validation sequence: keep the train rows as one contiguous stream each
                self.train_rows = torch.from_numpy(arr[np.sort(perm[n_val:])].astype(np.int64))
                self.corpus_bytes = len(corpus)
        if self.kind == "markov":
            rng = np.random.default_rng(stable_seed(self.seed, STREAM_SOURCE))
            zipf = 1.0 / np.arange(1, VOCAB + 1) ** cfg["markov_zipf"]
            zipf /= zipf.sum()
            trans = np.empty((VOCAB, VOCAB))
            for i in range(VOCAB):
                trans[i, rng.permutation(VOCAB)] = zipf
            self.cum = np.cumsum(trans, axis=1)  # (V, V) row-wise CDFs
            self.cum[:, -1] = 1.0
        if self.kind not in ("text", "markov", "recall"):
            raise ValueError(f"unknown data {self.kind!r}")

    def _sequences(self, rng: np.random.Generator, n: int) -> torch.Tensor:
        """n sequences of T+1 tokens, (n, T+1) int64."""
        L = self.T + 1
        if self.kind == "text":
            rows = self.train_rows
            r = rng.integers(0, rows.shape[0], size=n)
            off = rng.integers(0, L, size=n)
            flat = rows.reshape(-1)
            starts = np.minimum(r * L + off, flat.numel() - L)
            return torch.stack([flat[s : s + L] for s in starts])
        if self.kind == "recall":
            k = self.cfg["recall_keys"]
            out = np.empty((n, L), dtype=np.int64)
            for i in range(n):
                keys = rng.choice(128, size=k, replace=False)  # this sequence's keys ...
                values = 128 + rng.integers(0, 128, size=k)  # ... and their values
                pick = rng.integers(0, k, size=(L + 1) // 2)
                pairs = np.stack([keys[pick], values[pick]], axis=1).reshape(-1)
                out[i] = pairs[:L]
            return torch.from_numpy(out)
        # markov: vectorised over the n chains
        out = np.empty((n, L), dtype=np.int64)
        out[:, 0] = rng.integers(0, VOCAB, size=n)
        u = rng.random((n, L))
        for t in range(1, L):
            out[:, t] = (self.cum[out[:, t - 1]] < u[:, t : t + 1]).sum(1)
        return torch.from_numpy(np.minimum(out, VOCAB - 1))

    def get_batch(self, step: int):
        rng = np.random.default_rng(stable_seed(self.seed, STREAM_TRAIN, step))
        seq = self._sequences(rng, self.B)
        return seq[:, :-1], seq[:, 1:]

    def val_batches(self, n_batches: int):
        """The fixed validation set as a list of (x, y), each (B, T)."""
        if self.kind == "text":
            rows = self.val_rows
            n = min(rows.shape[0], n_batches * self.B)
            rows = rows[:n]
        else:
            rows = self._sequences(np.random.default_rng(stable_seed(self.seed, STREAM_VAL)), n_batches * self.B)
        return [(rows[i : i + self.B, :-1], rows[i : i + self.B, 1:]) for i in range(0, rows.shape[0], self.B)]
