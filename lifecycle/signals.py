"""Signals the model lifecycle sends; the search app listens (lifecycle knows nothing of search)."""

from django.dispatch import Signal

# Sent by a retrain once the new version is embedded and indexed, with `version`, `active` (or None) and
# `product_ids` (the held-out products). A receiver measures search on them through the search code and
# returns a dict: `settings` (search settings chosen for `version`), `score` and `active_score` (what the
# activation gate compares), and any detail worth keeping in the version's metrics.
search_tuning_requested = Signal()
