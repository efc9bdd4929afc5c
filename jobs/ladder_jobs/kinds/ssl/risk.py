"""The SSL risk decomposition (Dubois, Hashimoto & Liang, "Evaluating Self-Supervised
Learning via Risk Decomposition", 2023) from four measured error rates.

The paper's estimators, in this job's splits (data.py):

    e_sup_train   supervised model of the same architecture: the same linear probe, fitted
                  on its frozen encoder, error on the pre-training set it was trained on
                  (approx_estimator=probe, the paper's), or its own end-to-end head's
                  error (approx_estimator=head)                -> best the architecture can do
    e_probe_train linear probe on the frozen SSL encoder, trained on the full pre-training
                  set with labels and tested on that same set  -> best probe on this encoder
    e_probe_ho    probe trained on the pre-training set WITHOUT its held-out split (or a
                  few-shot draw from it), tested on the held-out split (as large as the
                  test set by default): data the encoder saw, the probe did not
                                                               -> + finite probe data
    e_test        the downstream probe, tested on the test set -> + encoder saw finite data

The components are telescoping differences, so they add up to the total test error by
construction (up to float rounding, asserted below):

    approximation          = e_sup_train
    representation usability = e_probe_train - e_sup_train
    probe generalization   = e_probe_ho    - e_probe_train
    encoder generalization = e_test        - e_probe_ho
    total                  = e_test

A component can come out negative on small data (an estimate, not a probability); the
paper's estimators behave the same way.
"""

from __future__ import annotations

COMPONENTS = ("approx_error", "usability_error", "probe_gen_error", "encoder_gen_error")
TOLERANCE = 1e-9


def decompose(e_sup_train: float, e_probe_train: float, e_probe_ho: float, e_test: float) -> dict:
    """The four components and total_error (floats), asserting that they add up exactly."""
    for name, e in (("e_sup_train", e_sup_train), ("e_probe_train", e_probe_train),
                    ("e_probe_ho", e_probe_ho), ("e_test", e_test)):
        assert 0.0 <= e <= 1.0, f"{name} must be an error rate in [0, 1], got {e}"
    parts = {
        "approx_error": float(e_sup_train),
        "usability_error": float(e_probe_train - e_sup_train),
        "probe_gen_error": float(e_probe_ho - e_probe_train),
        "encoder_gen_error": float(e_test - e_probe_ho),
    }
    parts["total_error"] = float(e_test)
    check(parts)
    return parts


def check(parts: dict, suffix: str = "") -> None:
    """Assert that the components (named with `suffix`) add up to total_error{suffix}."""
    total = sum(parts[name + suffix] for name in COMPONENTS)
    assert abs(total - parts["total_error" + suffix]) < TOLERANCE, (
        f"risk components sum to {total!r}, total_error{suffix} is {parts['total_error' + suffix]!r}"
    )
