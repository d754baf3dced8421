"""Self-contained checkpoint folders: safetensors weights, JSON config, tokenizer and encoder config.

Loading never unpickles anything and needs neither the internet nor the pretrained-weights wheels.
The large WordPiece embedding table can be stored as int8 with one float scale per row, which keeps a
MiniLM-based checkpoint under 50 MB (the table is 11.7M of its 27M parameters).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from mlcore.config import ModelConfig, save_json
from mlcore.model import DualEncoder, create_model
from mlcore.text_tower import BertTextTower

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
ENCODER_CONFIG_DIR = "text_encoder"
QUANTISED_SUFFIX = ".int8"
SCALE_SUFFIX = ".row_scale"


def _is_quantised(key: str, tensor: torch.Tensor) -> bool:
    """The big matrices stored int8 with a scale per row: the WordPiece table and the MLP projection
    heads (about 8 MB of the 2-layer heads), which keeps a model with MLP heads under 50 MB."""
    large = tensor.ndim == 2 and tensor.numel() >= 500_000
    return large and ("word_embeddings" in key or "projection" in key)


def save_checkpoint(
    model: DualEncoder,
    folder: str | Path,
    fp16: bool = True,
    int8_word_embeddings: bool = True,
    name: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if int8_word_embeddings and _is_quantised(key, tensor):
            scale = tensor.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0  # (vocab, 1)
            tensors[key + QUANTISED_SUFFIX] = torch.round(tensor / scale).to(torch.int8)
            tensors[key + SCALE_SUFFIX] = scale.float()
            continue
        if fp16 and tensor.is_floating_point():
            tensor = tensor.half()
        tensors[key] = tensor
    save_file(tensors, str(folder / WEIGHTS_FILE))
    shutil.copyfile(model.tokenizer.tokenizer_file, folder / TOKENIZER_FILE)
    if isinstance(model.text_tower, BertTextTower):
        model.text_tower.save_encoder_config(folder / ENCODER_CONFIG_DIR)
    save_json(
        folder / CONFIG_FILE,
        {
            "format_version": FORMAT_VERSION,
            "name": name or folder.name,
            "model": model.config.to_dict(),
            **(extra or {}),
        },
    )
    return folder


def read_checkpoint_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{folder} is not an mlcore model folder (no {CONFIG_FILE}); "
            f"train one with `python -m mlcore train ... --out DIR`"
        )
    return json.loads(path.read_text())


def retrieval_dim_of(payload: dict[str, Any]) -> int:
    """Length of the vectors a checkpoint (its config.json payload) embeds products and queries into."""
    return ModelConfig.from_dict(payload["model"]).retrieval_dim


def load_checkpoint(folder: str | Path, device: torch.device | str = "cpu") -> DualEncoder:
    folder = Path(folder)
    payload = read_checkpoint_config(folder)
    config = ModelConfig.from_dict(payload["model"])
    encoder_config = folder / ENCODER_CONFIG_DIR
    model = create_model(
        config,
        pretrained=False,
        tokenizer_file=str(folder / TOKENIZER_FILE),
        encoder_config_folder=str(encoder_config) if encoder_config.exists() else None,
    )
    stored = load_file(str(folder / WEIGHTS_FILE))
    state: dict[str, torch.Tensor] = {}
    for key, tensor in stored.items():
        if key.endswith(SCALE_SUFFIX):
            continue
        if key.endswith(QUANTISED_SUFFIX):
            base = key[: -len(QUANTISED_SUFFIX)]
            state[base] = tensor.float() * stored[base + SCALE_SUFFIX]
        else:
            state[key] = tensor.float() if tensor.is_floating_point() else tensor
    model.load_state_dict(state)
    return model.to(device).eval()
