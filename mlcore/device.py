"""Which torch device a model runs on, from the "auto" | "cpu" | "cuda" setting."""

from __future__ import annotations

import torch


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "device='cuda' was asked for but torch sees no CUDA device; use --device auto or cpu"
        )
    return torch.device(device)
