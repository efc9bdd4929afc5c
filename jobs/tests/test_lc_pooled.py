"""Difficulty pooled across policies: the annotations an rlhf trial keeps, and `lc-winrate` on
records rebuilt from them (what `npx ladder lc-winrate SWEEP` does with a sweep's trials)."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import JOBS_DIR, job_env

pytest.importorskip("sklearn", reason="the cross-validated GLMs are scikit-learn's")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV  # noqa: E402
from sklearn.model_selection import GroupKFold  # noqa: E402

from ladder_jobs.kinds.rlhf import DEFAULTS, GLMS, lc_file  # noqa: E402

# test_rlhf_job.py's tiny xs config: one trial takes seconds on 2 busy cores.
TINY = dict(DEFAULTS, method="ppo", d_model=32, n_layers=1, max_digits=4, max_filler=4, batch_size=32, sft_steps=30,
            rm_steps=20, rm_pairs=256, rm_heldout=128, rl_steps=6, n_eval=64, bon_n=4, ei_prompts=64)


def lc(tmp_path, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "ladder_jobs", "lc-winrate", *args], env=job_env(tmp_path), cwd=JOBS_DIR,
                          input=stdin, capture_output=True, text=True, timeout=120)


SHORT = {"length_controlled_v1": "v1", "length_controlled_noreg": "noreg", "length_controlled_minimal": "minimal"}


def evaluated(monkeypatch, **overrides):
    """Train and evaluate one trial in-process. Returns (result, kept annotations, the trial's
    fresh-SFT-sample annotations (y, lengths) that it pooled difficulty with, or None)."""
    torch = pytest.importorskip("torch")
    from ladder_jobs.kinds.rlhf import annotators
    from ladder_jobs.kinds.rlhf import train as tr

    torch.set_num_threads(1)
    cfg = {**TINY, **overrides}
    calls = []
    real = annotators.annotate_all

    def spy(pool, q_m, q_r, len_m, len_r, rng):  # the 2nd call labels the SFT sample (not for method sft)
        y, idx = real(pool, q_m, q_r, len_m, len_r, rng)
        calls.append((y, np.asarray(len_m)))
        return y, idx

    monkeypatch.setattr(tr.annotators, "annotate_all", spy)
    run = tr.Run(cfg, torch.device("cpu"))
    for n in range(1, run.last_step + 1):
        run.step(n)
    res = run.evaluate()
    return res, run.eval_annotations, (calls[1] if len(calls) > 1 else None)


def records(ann: dict, generator: str) -> list:
    """alpaca_eval records of kept annotations, in their row order."""
    J, out = ann["judges"], []
    for i, ident in enumerate(ann["instruction"]):
        for j in range(J):
            out.append({"instruction": ident, "generator_1": "sft_reference", "generator_2": generator,
                        "length_1": ann["length_ref"][i], "length_2": ann["length_model"][i],
                        "preference": 1 + ann["preference"][i * J + j], "difficulty_group": str(ann["group"][i])})
    return out


@pytest.fixture(scope="module")
def ppo_seed0():
    mp = pytest.MonkeyPatch()
    try:
        yield evaluated(mp, method="ppo")
    finally:
        mp.undo()


@pytest.mark.torch
def test_kept_annotations_rebuild_the_trials_own_figures(ppo_seed0):
    res, ann, (y_sft, len_sft) = ppo_seed0
    n, J = TINY["n_eval"], TINY["n_annotators"]
    assert ann["judges"] == J and len(ann["instruction"]) == n and len(ann["preference"]) == n * J
    assert len(set(ann["instruction"])) == n  # repeats of a prompt stay apart, as in the trial's fit
    assert json.dumps(ann).count("\n") == 0 and len(json.dumps(ann)) < 40 * n * J  # compact
    method = records(ann, "ppo")
    alone = lc_file.compute(method, "length_controlled_noreg")["generators"]["ppo"]
    assert alone["win_rate"] == pytest.approx(100 * res["win_rate"], abs=1e-12)
    # The trial pooled difficulty over its method's and a fresh SFT sample's labels on the same
    # instructions; the same two generators in one file give its LC win rate under every GLM.
    sft = [{**r, "generator_2": "sft_sample", "length_2": float(len_sft[i // J]), "preference": 1 + float(y_sft[i])}
           for i, r in enumerate(method)]
    for glm in GLMS:
        got = lc_file.compute(method + sft, glm)["generators"]["ppo"]
        assert got["difficulty_generators"] == 2
        assert got["length_controlled_winrate"] == pytest.approx(100 * res[f"lc_win_rate_{SHORT[glm]}"], abs=1e-9), glm


@pytest.mark.torch
def test_identity_follows_the_instructions_not_the_method(ppo_seed0, monkeypatch):
    _, ppo, _ = ppo_seed0
    _, sft, _ = evaluated(monkeypatch, method="sft", rl_lr=1e-2)
    assert sft["instruction"] == ppo["instruction"] and sft["group"] == ppo["group"]
    assert sft["length_ref"] == ppo["length_ref"] and sft["preference"] != ppo["preference"]
    _, other_seed, _ = evaluated(monkeypatch, method="sft", seed=1)
    assert len(set(other_seed["instruction"]) & set(ppo["instruction"])) < TINY["n_eval"] // 4


@pytest.mark.torch
def test_the_job_reports_its_annotations_in_the_result_meta(tmp_path):
    from conftest import run_job, write_config

    cfg = {k: TINY[k] for k in ("method", "d_model", "n_layers", "max_digits", "max_filler", "batch_size", "sft_steps",
                                "rm_steps", "rm_pairs", "rm_heldout", "rl_steps", "n_eval")}
    env = job_env(tmp_path, OMP_NUM_THREADS="1")
    r = run_job(["run", "--kind", "rlhf", "--config", str(write_config(tmp_path, {"preset": "xs", **cfg}))], env, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "out" / "result.json").read_text())
    ann = res["meta"]["eval_annotations"]
    assert len(ann["instruction"]) == TINY["n_eval"] and ann["judges"] == TINY["n_annotators"]
    alone = lc_file.compute(records(ann, "ppo"), "length_controlled_v1")["generators"]["ppo"]
    assert alone["win_rate"] == pytest.approx(100 * res["metrics"]["win_rate"], abs=1e-12)


def test_identity_keeps_repeats_apart_and_names_the_judges():
    from ladder_jobs.kinds.rlhf import lc_eval

    prompts = np.array([[1, 5, 6], [1, 5, 7], [1, 5, 6], [1, 5, 6]])
    refs = np.array([[4, 3], [4, 3], [4, 3], [5, 3]])  # rows 0 and 2: the same prompt and reference
    judges = [{"length_bias": 0.3}, {"length_bias": 0.45}]
    ids = lc_eval.instruction_ids(prompts, refs, judges)
    assert len(set(ids)) == 4 and all(len(i) == lc_eval.ID_HEX for i in ids)
    assert lc_eval.instruction_ids(prompts, refs, judges) == ids  # a pure function of its inputs
    assert set(lc_eval.instruction_ids(prompts, refs, judges[:1])).isdisjoint(ids)  # other judges, other ids


def test_too_many_annotations_are_not_kept_and_it_says_so():
    from ladder_jobs.kinds.rlhf import lc_eval

    n = lc_eval.MAX_KEPT_ANNOTATIONS // 4 + 1
    rec = lc_eval.annotation_record(["x"] * n, np.zeros(n), np.ones(n), np.ones(n), np.zeros(4 * n), 4)
    assert set(rec) == {"format", "omitted"} and str(4 * n) in rec["omitted"]
    # the largest record kept is well under the ingest's 1 MiB result body
    n = lc_eval.MAX_KEPT_ANNOTATIONS // 4
    ids = lc_eval.instruction_ids(np.arange(n * 7).reshape(n, 7) % 22, np.zeros((n, 11)), [{"length_bias": 0.3}])
    rec = lc_eval.annotation_record(ids, np.full(n, 416), np.full(n, 15), np.full(n, 15), np.ones(4 * n), 4)
    assert len(json.dumps(rec)) < 1024**2 // 2


# -- pooling across three policies, against an independent computation --------------------------

def synthetic(seed=3, n=60, judges=3):
    """Three policies on the same instructions; their wins depend on the instruction's group and on
    the length gap, which differs by policy (terse, verbose, better)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 6, n)
    len_ref = rng.integers(3, 12, n)
    out = []
    for name, extra, skill in (("terse", -2, 0.0), ("verbose", 4, 0.0), ("better", 0, 0.8)):
        len_m = np.clip(len_ref + extra + rng.integers(-2, 3, n), 1, None)
        for i in range(n):
            for _ in range(judges):
                z = skill + 0.3 * (len_m[i] - len_ref[i]) + 0.4 * (group[i] - 2.5)
                win = rng.random() < 1 / (1 + np.exp(-z))
                out.append({"instruction": f"instr {i}", "generator_2": name, "generator_1": "ref",
                            "length_1": int(len_ref[i]), "length_2": int(len_m[i]), "preference": 2 if win else 1,
                            "difficulty_group": f"g{group[i]}"})
    return out


def independent(recs, glm):
    """Pooled difficulty and the GLM, written out here (numpy / scikit-learn only)."""
    gen = np.array([r["generator_2"] for r in recs])
    key = np.array([r["difficulty_group"] for r in recs])
    instr = np.array([int(r["instruction"].split()[1]) for r in recs])
    y = np.array([r["preference"] - 1.0 for r in recs])
    dlen = np.array([r["length_2"] - r["length_1"] for r in recs], dtype=float)
    gamma = np.zeros(len(y))
    for k in set(key):  # every policy's wins on the group: smoothed log-odds, centred over all rows
        m = key == k
        gamma[m] = np.log((y[m].sum() + 0.5) / ((1 - y[m]).sum() + 0.5))
    gamma -= gamma.mean()
    out = {}
    for name in sorted(set(gen)):
        m = gen == name
        X = np.stack([np.ones(m.sum()), np.tanh(dlen[m] / dlen[m].std(ddof=1)), gamma[m]], 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if glm == "length_controlled_noreg":
                # Newton: lbfgs stops ~1e-4 short of the optimum here
                model = LogisticRegression(penalty=None, fit_intercept=False, solver="newton-cholesky", tol=1e-12,
                                           max_iter=1000).fit(X, y[m])
            else:
                folds = list(GroupKFold(5).split(X, y[m], instr[m]))
                model = LogisticRegressionCV(Cs=10, cv=folds, penalty="l1", solver="liblinear", fit_intercept=False,
                                             random_state=123, scoring="neg_log_loss").fit(X, y[m].astype(int))
        X0 = X.copy()
        X0[:, 1] = 0
        out[name] = (100 * y[m].mean(), 100 * model.predict_proba(X0)[:, 1].mean())
    return out


@pytest.mark.parametrize("glm", ["length_controlled_noreg", "length_controlled_v1"])
def test_three_policies_pooled_from_stdin_match_an_independent_computation(tmp_path, glm):
    recs = synthetic()
    r = lc(tmp_path, "-", "--glm", glm, "--json", stdin=json.dumps(recs))
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["generators"]
    want = independent(recs, glm)
    assert sorted(got) == sorted(want) == ["better", "terse", "verbose"]
    for name, (raw, lcwr) in want.items():
        assert got[name]["difficulty_generators"] == 3
        assert got[name]["win_rate"] == pytest.approx(raw, abs=1e-9)
        assert got[name]["length_controlled_winrate"] == pytest.approx(lcwr, abs=1e-6), (name, got[name], lcwr)
    # the same records from a file print the same
    path = tmp_path / "a.json"
    path.write_text(json.dumps(recs))
    assert lc(tmp_path, str(path), "--glm", glm, "--json").stdout == r.stdout


def test_stdin_text_output_and_bad_difficulty_group(tmp_path):
    recs = synthetic(n=20)
    r = lc(tmp_path, "-", stdin="\n".join(json.dumps(x) for x in recs))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "GLM: length_controlled_v1; difficulty across 3 generators"
    bad = [dict(recs[0]), {**recs[1], "difficulty_group": "other"}]
    r = lc(tmp_path, "-", stdin=json.dumps(bad))
    assert r.returncode == 2 and "record 1: field 'difficulty_group'" in r.stderr, r.stderr
    r = lc(tmp_path, "-", stdin=json.dumps([{**recs[0], "difficulty_group": 3}]))
    assert r.returncode == 2 and "record 0: field 'difficulty_group' must be a non-empty string" in r.stderr
