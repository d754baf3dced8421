"""The activation rule on its own: two held-out reports and the options in, a decision out."""

import pytest

from lifecycle.activation import activation_decide


def _report(recall: float) -> dict:
    """A held-out report whose selection score (R@1+R@5+R@10, both directions) is 6 * recall."""
    metrics = {"R@1": recall, "R@5": recall, "R@10": recall}
    return {"t2i": metrics, "i2t": metrics}


def test_a_version_that_scores_above_the_margin_is_activated():
    decision = activation_decide(
        new_report=_report(50), active_report=_report(40), active_name="v1", margin=10.0
    )
    assert decision.activate and decision.better
    assert decision.reason == "score 300.0 vs 240.0 for the active v1 (margin 10.0)"


@pytest.mark.parametrize("new_recall", [40.0, 41.0, 41.5])
def test_a_version_within_the_margin_is_not_activated(new_recall):
    # 6 * 1.5 = 9 points above: still within a margin of 10.
    decision = activation_decide(
        new_report=_report(new_recall), active_report=_report(40), active_name="v1", margin=10.0
    )
    assert not decision.activate and not decision.better
    assert decision.reason.startswith("not better than the active model: score")


def test_with_no_active_model_any_version_is_activated():
    decision = activation_decide(new_report=_report(1), active_report=None, active_name=None, margin=10.0)
    assert decision.activate and decision.reason == "no model was active"


def test_force_activates_a_worse_version_and_says_so():
    decision = activation_decide(
        new_report=_report(10), active_report=_report(40), active_name="v1", margin=0.0, force=True
    )
    assert decision.activate and not decision.better
    assert decision.reason.startswith("forced; score 60.0 vs 240.0")


def test_no_activate_leaves_even_a_better_version_ready():
    decision = activation_decide(
        new_report=_report(90), active_report=_report(40), active_name="v1", margin=0.0, activate=False
    )
    assert not decision.activate and decision.better
    assert decision.reason.startswith("left ready (--no-activate)")
