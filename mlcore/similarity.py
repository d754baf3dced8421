"""Cosine logits, shared by the serving model's category head and the training losses' classifiers."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_logits(
    embeddings: torch.Tensor, class_weights: torch.Tensor, scale: torch.Tensor | float
) -> torch.Tensor:
    """NormFace logits: scale x cosine between each embedding and each class weight, (batch, classes)."""
    return scale * F.normalize(embeddings, dim=-1) @ F.normalize(class_weights, dim=-1).t()
