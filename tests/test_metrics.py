"""Metrics against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from ser_helpers.metrics import (bootstrap_ci, brier_score, classification_metrics, ece_score, majority_baseline,
                                 save_confusion_csv)


def test_ece_hand_computed():
    # two bins used: conf 0.9 (2 samples, 1 correct) and conf 0.6 (2 samples, 2 correct)
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 0, 1])
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    assert ece_score(probs, y) == pytest.approx(expected)


def test_ece_bin_edges_are_lower_exclusive_upper_inclusive():
    # confidence exactly 1/15*k belongs to the bin whose upper edge it is: a perfect 1.0 is in the last bin
    probs = np.array([[1.0, 0.0]])
    assert ece_score(probs, np.array([0])) == pytest.approx(0.0)
    assert ece_score(probs, np.array([1])) == pytest.approx(1.0)


def test_classification_metrics_wa_ua_f1():
    labels = ["ang", "hap", "neu", "sad"]
    y = ["ang", "ang", "ang", "hap", "neu", "sad"]
    pred = [0, 0, 1, 1, 2, 2]
    probs = np.eye(4)[pred] * 0.7 + 0.075
    m = classification_metrics(y, probs, labels)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["ua"] == pytest.approx((2 / 3 + 1 + 1 + 0) / 4)
    assert m["per_class"]["sad"]["support"] == 1 and m["per_class"]["sad"]["recall"] == 0
    assert m["confusion_matrix"][0] == [2, 1, 0, 0]
    assert m["confusion_matrix"][3] == [0, 0, 1, 0]
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 2 * 0.5 * 1 / 1.5, 2 * 0.5 * 1 / 1.5, 0.0]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))


def test_brier_and_majority():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert brier_score(probs, [0, 0]) == pytest.approx((0 + 0.5) / 2)
    m = majority_baseline(["neu", "neu", "sad"], ["neu", "sad", "ang", "hap"])
    assert m["majority_label"] == "neu" and m["accuracy"] == pytest.approx(0.25)


def test_bootstrap_interval_contains_point_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    probs = np.full((200, 4), 0.1)
    probs[np.arange(200), np.where(rng.random(200) < 0.7, y, (y + 1) % 4)] = 0.7
    lo, hi = bootstrap_ci(y, probs, "macro_f1", n_bootstrap=200)
    point = classification_metrics(y, probs)["macro_f1"]
    assert lo <= point <= hi and hi - lo < 0.3


def test_confusion_csv(tmp_path):
    path = save_confusion_csv(tmp_path / "cm.csv", [[1, 2, 0, 0], [0, 3, 0, 0], [0, 0, 4, 0], [0, 0, 0, 5]])
    lines = path.read_text().splitlines()
    assert lines[0] == "true_label,ang,hap,neu,sad"
    assert lines[1] == "ang,1,2,0,0"


def test_fast_bootstrap_metrics_match_sklearn():
    from sklearn.metrics import balanced_accuracy_score, f1_score

    from ser_helpers.metrics import macro_f1, unweighted_accuracy
    rng = np.random.default_rng(1)
    for _ in range(20):
        y = rng.integers(0, 4, 30)
        p = rng.integers(0, 4, 30)
        assert macro_f1(y, p, 4) == pytest.approx(
            f1_score(y, p, labels=[0, 1, 2, 3], average="macro", zero_division=0))
        assert unweighted_accuracy(y, p, 4) == pytest.approx(balanced_accuracy_score(y, p))


def _calibrated_sample(n, rng):
    """Probabilities whose top-1 confidence is exactly the chance of being right (a perfectly calibrated model)."""
    conf = rng.uniform(0.3, 1.0, n)
    probs = np.stack([conf, (1 - conf) / 3, (1 - conf) / 3, (1 - conf) / 3], 1)
    right = rng.random(n) < conf
    y = np.where(right, 0, rng.integers(1, 4, n))
    return probs, y


def test_ece_sampling_floor_matches_direct_simulation_and_shrinks_with_n():
    from ser_helpers.metrics import ece_sampling_floor
    rng = np.random.default_rng(0)
    probs, _ = _calibrated_sample(300, rng)
    floor = ece_sampling_floor(probs, n_sim=2000, seed=1)
    # the same quantity with the reference (loop) ECE, from fresh draws of the labels
    direct = [ece_score(probs, np.where(rng.random(300) < probs[:, 0], 0, 1)) for _ in range(400)]
    assert floor["n"] == 300 and floor["p05"] < floor["mean"] < floor["p95"]
    assert abs(floor["mean"] - np.mean(direct)) < 0.006
    assert abs(floor["p95"] - np.percentile(direct, 95)) < 0.012
    big = ece_sampling_floor(_calibrated_sample(3000, rng)[0], n_sim=500, seed=1)
    assert big["mean"] < floor["mean"] / 2.5  # ~ 1/sqrt(n)
    # a calibrated model's own ECE usually lies inside the floor's range; an over-confident one does not
    p, y = _calibrated_sample(3000, rng)
    assert ece_score(p, y) <= big["p95"]
    sharp = np.stack([np.full(3000, 0.97), *[np.full(3000, 0.01)] * 3], 1)
    assert ece_score(sharp, y) > 5 * big["p95"]


def test_ece_bootstrap_interval_is_bias_corrected_and_matches_fast_version():
    from ser_helpers.metrics import bootstrap_intervals
    rng = np.random.default_rng(3)
    probs, y = _calibrated_sample(600, rng)
    point = ece_score(probs, y)
    # the raw percentile interval of a well-calibrated model lies (almost) wholly above its point ECE
    raw = [ece_score(probs[i], y[i]) for i in (rng.integers(0, 600, 600) for _ in range(300))]
    assert np.percentile(raw, 10) > point
    lo, hi = bootstrap_ci(y, probs, "ece", n_bootstrap=300, seed=0)
    assert 0.0 <= lo <= point <= hi
    fast = bootstrap_intervals(y, probs, n_bootstrap=300, seed=0)["ece"]
    assert fast[0] <= point <= fast[1]
    assert abs(fast[0] - lo) < 0.01 and abs(fast[1] - hi) < 0.01


def test_confusion_counts_label_ids_and_one_row_bootstrap():
    from sklearn.metrics import confusion_matrix

    from ser_helpers.common import SERError
    from ser_helpers.metrics import bootstrap_interval, confusion_counts, label_ids
    rng = np.random.default_rng(2)
    y, p = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    assert (confusion_counts(y, p, 4) == confusion_matrix(y, p, labels=[0, 1, 2, 3])).all()
    assert list(label_ids(["sad", "ang"], ["ang", "hap", "neu", "sad"], "m.csv")) == [3, 0]
    with pytest.raises(SERError, match=r"m.csv: unknown label 'fru' at row 3 .*2 such rows"):
        label_ids(["ang", "fru", "fru"], ["ang", "hap", "neu", "sad"], "m.csv")
    one = np.array([[0.7, 0.1, 0.1, 0.1]])
    assert bootstrap_interval([0], one, "macro_f1", n_bootstrap=20) == (0.25, 0.25)  # one label right, three absent
    with pytest.raises(ValueError, match="unknown bootstrap metric"):
        bootstrap_interval([0, 1], np.eye(4)[:2], "auc")
