"""MiniLM's frozen part's output for a product text, computed once and kept.

The text side of a model trained in `cpu-fast` mode starts with a frozen part of all-MiniLM-L6-v2: the
token embeddings and the leading layers that never train (all of it when the text tower is frozen). What
that part gives a text depends only on the text and on the frozen weights, so, like a photo's trunk
features (mlcore.photo_features), it is stored once, keyed by a digest of the text and by
`text_features_key`, and every later version runs only its own trained layers and projection on it:

- a frozen text tower: the mean-pooled last hidden states, (hidden,) float16;
- a tower whose last layers train: the hidden states entering them, (tokens, hidden) float16.
"""

from __future__ import annotations

import hashlib

from mlcore.model import DualEncoder
from mlcore.photo_features import weights_digest
from mlcore.text_tower import BertTextTower


def text_features_key(model: DualEncoder) -> str | None:
    """What the text tower's frozen part computes (kind, token limit, digest of the frozen weights), or
    None when nothing of it is frozen or the tower is not MiniLM."""
    tower = model.text_tower
    if not isinstance(tower, BertTextTower) or tower.trainable_layers < 0:
        return None
    encoder = tower.encoder
    if tower.is_frozen:
        kind, modules = "pooled", [encoder]
    else:
        count = tower.frozen_layer_count
        kind, modules = f"layers{count}", [encoder.embeddings, *encoder.encoder.layer[:count]]
    return f"minilm-{kind}-len{model.config.text_max_length}-{weights_digest(modules)}"


def text_content_key(text: str) -> str:
    """The key a text's features are kept under: a digest of the exact text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
