"""The rule that decides whether a retrained version replaces the active one.

Pure: it sees two held-out reports and the options, never the database, so it is tested on its own.
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
    new_report: dict,
    active_report: dict | None,
    active_name: str | None,
    margin: float,
    activate: bool = True,
    force: bool = False,
) -> ActivationDecision:
    """Activate when asked to and the new version scores more than `margin` above the active one on
    the same held-out products (score: R@1+R@5+R@10 summed over both directions), or when forced."""
    if active_report is None:
        better, comparison = True, "no model was active"
    else:
        new_score, active_score = selection_score(new_report), selection_score(active_report)
        better = new_score - active_score > margin
        scores = f"score {new_score:.1f} vs {active_score:.1f}"
        comparison = f"{scores} for the active {active_name or ''} (margin {margin})"
    if not activate:
        return ActivationDecision(False, better, f"left ready (--no-activate); {comparison}")
    if not (better or force):
        return ActivationDecision(False, better, f"not better than the active model: {comparison}")
    return ActivationDecision(True, better, ("forced; " if force and not better else "") + comparison)
