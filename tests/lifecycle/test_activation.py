"""The activation rule on its own: two held-out reports and the options in, a decision out."""

import pytest

from lifecycle.activation import activation_decide, activation_noise, activation_scores


def _report(recall: float) -> dict:
    """A held-out report whose selection score (R@1+R@5+R@10, both directions) is 6 * recall."""
    metrics = {"R@1": recall, "R@5": recall, "R@10": recall}
    return {"t2i": metrics, "i2t": metrics}


def _decide(new: float, active: float | None, **options):
    new_score, active_score, _ = activation_scores(
        new_report=_report(new), active_report=None if active is None else _report(active), search_report=None
    )
    return activation_decide(new_score=new_score, active_score=active_score, **options)


def test_a_version_that_scores_above_the_margin_is_activated():
    decision = _decide(50, 40, active_name="v1", margin=10.0)
    assert decision.activate and decision.better
    assert decision.reason == "score 300.0 vs 240.0 for the active v1 (margin 10.0)"


@pytest.mark.parametrize("new_recall", [40.0, 41.0, 41.5])
def test_a_version_within_the_margin_is_not_activated(new_recall):
    # 6 * 1.5 = 9 points above: still within a margin of 10.
    decision = _decide(new_recall, 40, active_name="v1", margin=10.0)
    assert not decision.activate and not decision.better
    assert decision.reason.startswith("not better than the active model: score")


def test_with_no_active_model_any_version_is_activated():
    decision = _decide(1, None, active_name=None, margin=10.0)
    assert decision.activate and decision.reason == "no model was active"


def test_force_activates_a_worse_version_and_says_so():
    decision = _decide(10, 40, active_name="v1", margin=0.0, force=True)
    assert decision.activate and not decision.better
    assert decision.reason.startswith("forced; score 60.0 vs 240.0")


def test_no_activate_leaves_even_a_better_version_ready():
    decision = _decide(90, 40, active_name="v1", margin=0.0, activate=False)
    assert not decision.activate and decision.better
    assert decision.reason.startswith("left ready (--no-activate)")


def test_the_gate_compares_search_on_the_shops_queries_when_search_measured_both():
    search = {"score": 0.61, "active_score": 0.55}
    new, active, name = activation_scores(
        new_report=_report(10), active_report=_report(40), search_report=search
    )
    assert (round(new, 6), round(active, 6), name) == (61.0, 55.0, "search mAP@10")
    decision = activation_decide(
        new_score=new, active_score=active, active_name="v1", margin=0.0, score_name=name
    )
    assert (
        decision.activate and decision.reason == "search mAP@10 61.0 vs 55.0 for the active v1 (margin 0.0)"
    )
    # Without a search measurement the model's recall sum decides, as before.
    assert activation_scores(new_report=_report(10), active_report=_report(40), search_report=None)[2] == (
        "model recall sum"
    )


def test_a_gain_within_the_noise_of_the_comparison_keeps_the_active_version():
    search = {"score": 0.62, "active_score": 0.60, "difference_standard_error": 0.03}
    new, active, name = activation_scores(
        new_report=_report(1), active_report=_report(1), search_report=search
    )
    noise = activation_noise(search_report=search, z=1.0)

    decision = activation_decide(
        new_score=new, active_score=active, active_name="v1", margin=0.0, score_name=name, noise=noise
    )

    assert round(noise, 6) == 3.0
    assert not decision.activate
    assert (
        decision.reason
        == "not better than the active model: search mAP@10 62.0 vs 60.0 for the active v1 (noise 3.0)"
    )


def test_a_gain_beyond_the_noise_switches():
    search = {"score": 0.70, "active_score": 0.60, "difference_standard_error": 0.03}
    noise = activation_noise(search_report=search, z=1.0)

    decision = activation_decide(new_score=70.0, active_score=60.0, active_name="v1", margin=0.0, noise=noise)

    assert decision.activate and decision.better


def test_without_a_paired_measurement_there_is_no_noise_bar():
    assert activation_noise(search_report={"score": 0.7, "active_score": 0.6}, z=1.0) == 0.0
    assert activation_noise(search_report=None, z=1.0) == 0.0
