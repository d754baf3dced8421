"""The rule that decides whether a retrained version replaces the active one.

Pure: it sees two held-out scores and the options, never the database, so it is tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlcore.evaluation import selection_score


@dataclass(frozen=True)
class ActivationDecision:
    activate: bool
    # Whether the new version beat the active one by more than the margin (True when none is active).
    better: bool
    reason: str


def activation_decide(
    *,
    new_score: float,
    active_score: float | None,
    active_name: str | None,
    margin: float,
    activate: bool = True,
    force: bool = False,
    score_name: str = "score",
    noise: float = 0.0,
) -> ActivationDecision:
    """Activate when asked to and the new version scores more than `margin` above the active one on
    the same held-out products, and more than `noise` (what chance alone moves the difference by,
    when the scores come with one), or when forced. The caller picks the score (activation_scores)."""
    if active_score is None:
        better, comparison = True, "no model was active"
    else:
        needed = max(margin, noise)
        better = new_score - active_score > needed
        scores = f"{score_name} {new_score:.1f} vs {active_score:.1f}"
        bar = f"margin {margin}" if noise <= margin else f"noise {noise:.1f}"
        comparison = f"{scores} for the active {active_name or ''} ({bar})"
    if not activate:
        return ActivationDecision(False, better, f"left ready (--no-activate); {comparison}")
    if not (better or force):
        return ActivationDecision(False, better, f"not better than the active model: {comparison}")
    return ActivationDecision(True, better, ("forced; " if force and not better else "") + comparison)


def activation_noise(*, search_report: dict | None, z: float) -> float:
    """`z` standard errors of the search score difference, in the score's units (percent); 0 without one."""
    error = (search_report or {}).get("difference_standard_error")
    return 100 * z * float(error) if error else 0.0


def activation_scores(
    *, new_report: dict, active_report: dict | None, search_report: dict | None
) -> tuple[float, float | None, str]:
    """(new, active, what they are): the search-level score when search measured both versions on the
    shop's own queries (mean mAP@10 in percent), else the model's (R@1+R@5+R@10 over both directions)."""
    if search_report and search_report.get("active_score") is not None:
        return 100 * search_report["score"], 100 * search_report["active_score"], "search mAP@10"
    if search_report and active_report is None:
        return 100 * search_report["score"], None, "search mAP@10"
    active = selection_score(active_report) if active_report is not None else None
    return selection_score(new_report), active, "model recall sum"
