"""Raw and length-controlled win rates of an alpaca_eval annotation file, per evaluated generator.

The file is alpaca_eval's own annotations format: a JSON array (or JSON lines) of records with
    instruction   str             the instruction both outputs answer (CV groups, difficulty)
    generator_2   str             the evaluated model (several may share one file)
    generator_1   str, optional   the baseline
    output_1/2    str             the outputs; their lengths in characters are what the GLM uses
    length_1/2    number >= 0     ... or those lengths directly, when the outputs are not kept
    preference    number in [1,2] 2 = generator_2 wins, 1 = the baseline, 1.5 a draw; 0 is read as
                                  a draw and null drops the record, as alpaca_eval does
    difficulty_group  str, optional   (not alpaca_eval's) instructions that share it share one
                                  difficulty estimate, as an rlhf trial pools its (op, digits)
                                  groups; without it each instruction is its own group
Difficulty is estimated across all generators of the file that were judged on an instruction
(lc_eval.difficulty), then one GLM is fitted per generator; a file of one generator gets no
difficulty term (the output says so). FILE "-" reads standard input (how `npx ladder lc-winrate`
hands over a sweep's records). Pure numpy (+ scikit-learn for the cross-validated GLMs): no torch.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from ladder_jobs.kinds.rlhf import lc_eval

MAX_FILE_BYTES = 512 * 2**20
MAX_RECORDS = 2_000_000
MAX_NAME_CHARS = 1000  # generator names are printed; an instruction is hashed to a key, not printed


class AnnotationError(ValueError):
    """A malformed annotation file; the message names the record and the field."""


def _read(source: str) -> tuple[str, str]:
    """(name for messages, text) of a file, or of standard input for "-"."""
    if source == "-":
        name, data = "stdin", sys.stdin.buffer.read(MAX_FILE_BYTES + 1)  # bounded: the rest is left unread
        too_big = len(data) > MAX_FILE_BYTES
    else:
        path = Path(source)
        name, too_big = path.name, path.stat().st_size > MAX_FILE_BYTES
        data = b"" if too_big else path.read_bytes()
    if too_big:
        raise AnnotationError(f"{name}: over the {MAX_FILE_BYTES}-byte limit")
    return name, data.decode("utf-8")


def _records(source: str) -> list:
    name, text = _read(source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as first:
        lines = [l for l in text.splitlines() if l.strip()]
        data = []
        for n, line in enumerate(lines):
            try:
                data.append(json.loads(line))
            except json.JSONDecodeError:
                raise AnnotationError(f"{name}: neither a JSON array ({first}) nor JSON lines (line {n + 1})") from None
    if not isinstance(data, list):
        raise AnnotationError(f"{name}: expected a JSON array of annotation records, got {type(data).__name__}")
    if len(data) > MAX_RECORDS:
        raise AnnotationError(f"{name}: {len(data)} records is over the {MAX_RECORDS}-record limit")
    return data


def _length(rec: dict, i: int, k: int) -> float:
    out, ln = rec.get(f"output_{k}"), rec.get(f"length_{k}")
    if isinstance(out, str):
        return float(len(out))
    if out is not None:
        raise AnnotationError(f"record {i}: field 'output_{k}' must be a string, got {type(out).__name__}")
    if isinstance(ln, bool) or not isinstance(ln, (int, float)) or not math.isfinite(ln) or ln < 0:
        raise AnnotationError(f"record {i}: needs field 'output_{k}' (string) or 'length_{k}' (number >= 0), got {ln!r}")
    return float(ln)


def _difficulty_key(rec: dict, i: int, instruction: str, groups: dict) -> tuple:
    g = rec.get("difficulty_group")
    if g is not None and (not isinstance(g, str) or not g or len(g) > MAX_NAME_CHARS):
        raise AnnotationError(f"record {i}: field 'difficulty_group' must be a non-empty string of at most "
                              f"{MAX_NAME_CHARS} characters")
    if groups.setdefault(instruction, g) != g:  # one instruction, one difficulty estimate
        raise AnnotationError(f"record {i}: field 'difficulty_group' is {g!r}, but an earlier record of the same "
                              f"instruction has {groups[instruction]!r}")
    return ("instruction", instruction) if g is None else ("group", g)


def _name(rec: dict, i: int, field: str, required: bool) -> str | None:
    v = rec.get(field)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v or len(v) > MAX_NAME_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise AnnotationError(f"record {i}: field '{field}' must be a non-empty string of at most {MAX_NAME_CHARS} "
                              "characters, without control characters (it is printed)")
    return v


def parse(records: list) -> dict:
    """Columns of the valid records: generator, baseline, instruction ids, difficulty-group ids,
    p in [0, 1], dlen."""
    gen, base, instr, diff, p, dlen = [], [], [], [], [], []
    ids: dict[str, int] = {}
    diff_ids: dict[tuple, int] = {}
    groups: dict[str, str | None] = {}
    dropped = 0
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise AnnotationError(f"record {i}: expected an object, got {type(rec).__name__}")
        pref = rec.get("preference", "missing")
        if pref == "missing":
            raise AnnotationError(f"record {i}: field 'preference' is missing")
        if pref is None or (isinstance(pref, float) and math.isnan(pref)):
            dropped += 1  # not annotated
            continue
        if isinstance(pref, bool) or not isinstance(pref, (int, float)) or not (pref == 0 or 1 <= pref <= 2):
            raise AnnotationError(f"record {i}: field 'preference' must be a number in [1, 2] (0 = draw), got {pref!r}")
        instruction = rec.get("instruction")
        if not isinstance(instruction, str):
            raise AnnotationError(f"record {i}: field 'instruction' must be a string")
        g2 = _name(rec, i, "generator_2", True)
        g1 = _name(rec, i, "generator_1", False)
        len1, len2 = _length(rec, i, 1), _length(rec, i, 2)
        gen.append(g2)
        base.append(g1)
        instr.append(ids.setdefault(instruction, len(ids)))
        diff.append(diff_ids.setdefault(_difficulty_key(rec, i, instruction, groups), len(diff_ids)))
        p.append(0.5 if pref == 0 else float(pref) - 1.0)
        dlen.append(len2 - len1)  # model minus baseline
    if not gen:
        raise AnnotationError("no annotated records (every preference is null, or the file is empty)")
    return {"generator": np.array(gen, dtype=object), "baseline": np.array(base, dtype=object),
            "instruction": np.array(instr), "difficulty_key": np.array(diff), "p": np.array(p), "dlen": np.array(dlen), "dropped": dropped}


def compute(records: list, glm: str = lc_eval.DEFAULT_GLM) -> dict:
    """{generator: {win_rate, length_controlled_winrate (percent), glm, n, ...}} sorted by name."""
    cols = parse(records)
    n_gens = len(set(cols["generator"]))
    # Across every generator. From a single generator's own labels (one per instruction) it would
    # predict them outright and absorb the length effect with them, so then it is left out (0).
    gamma = lc_eval.difficulty(cols["difficulty_key"], cols["p"]) if n_gens > 1 else np.zeros(len(cols["p"]))
    out = {}
    for g in sorted(set(cols["generator"])):
        m = cols["generator"] == g
        p = cols["p"][m]
        row = {"win_rate": 100 * float(p.mean()), "n": int(m.sum()), "glm": glm,
               "difficulty_generators": n_gens}
        if all(b == g for b in cols["baseline"][m]):  # a model against itself: 50 by construction
            row.update(length_controlled_winrate=50.0, theta=0.0, phi=0.0, psi=0.0)
        else:
            fit = lc_eval.lc_win_rate(p, cols["dlen"][m], gamma[m], cols["instruction"][m], glm)
            row.update(length_controlled_winrate=100 * fit["lc_win_rate"], theta=fit["lc_theta"], phi=fit["lc_phi"],
                       psi=fit["lc_psi"])
            if glm != "length_controlled_noreg":
                row["C"] = fit["lc_C"]
        out[g] = row
    return {"generators": out, "dropped_null_preference": cols["dropped"]}


def main(path: str, glm: str, as_json: bool) -> str:
    res = compute(_records(path), glm)
    if as_json:
        return json.dumps(res, indent=1, sort_keys=True)
    rows = res["generators"]
    width = max(9, *(len(g) for g in rows))
    note = f"difficulty across {len(rows)} generators" if len(rows) > 1 else "no difficulty term (one generator)"
    lines = [f"GLM: {glm}; {note}",
             f"{'generator':<{width}}  {'n':>6}  {'win_rate':>8}  {'LC win_rate':>11}"]
    lines += [f"{g:<{width}}  {r['n']:>6}  {r['win_rate']:>8.2f}  {r['length_controlled_winrate']:>11.2f}" for g, r in rows.items()]
    if res["dropped_null_preference"]:
        lines.append(f"({res['dropped_null_preference']} record(s) with a null preference dropped)")
    return "\n".join(lines)
