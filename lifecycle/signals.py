"""Signals the model lifecycle sends; the search app listens (lifecycle knows nothing of search)."""

from django.dispatch import Signal

# Sent by a retrain once the new version is embedded and indexed, with `version`, `active` (or None) and
# `product_ids` (the held-out products). A receiver measures search on them through the search code and
# returns a dict: `settings` (search settings chosen for `version`), `score` and `active_score` (what the
# activation gate compares), and any detail worth keeping in the version's metrics.
search_tuning_requested = Signal()

# Sent by a retrain before it trains, with `skus` (the products it trains on). A receiver returns a dict
# sku -> extra texts that name the product (queries shoppers clicked it from), which training samples
# beside the product's own texts.
training_texts_requested = Signal()
