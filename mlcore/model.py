"""The two-tower model and its typed factory over the registered backbone x text-branch combinations."""

from __future__ import annotations

import math
from itertools import product

import torch
import torch.nn.functional as F
from torch import nn

from mlcore.config import ModelConfig
from mlcore.image_tower import BACKBONES, ImageTower
from mlcore.similarity import cosine_logits
from mlcore.text_tower import TEXT_BRANCHES, BertTextTower, BiLSTMTextTower, TitleTokenizer, minilm_folder


class CategoryHead(nn.Module):
    """Cosine classifier over the joint space, shared by both modalities (NormFace, learnable scale): the
    category block of the retrieval embedding comes from its probabilities."""

    def __init__(self, num_categories: int, embed_dim: int, initial_scale: float = 16.0):
        super().__init__()
        self.class_weights = nn.Parameter(torch.randn(num_categories, embed_dim) * 0.02)
        self.log_scale = nn.Parameter(torch.tensor(math.log(initial_scale)))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(batch, embed_dim) -> (batch, num_categories) logits."""
        return cosine_logits(embeddings, self.class_weights, self.log_scale.exp())


def with_category_block(unit: torch.Tensor, head: nn.Module, weight: float) -> torch.Tensor:
    """[sqrt(1-w) e, sqrt(w) sqrt(p)] for unit embeddings e and the head's category probabilities p."""
    probabilities = head(unit).float().softmax(dim=-1).to(unit.dtype)
    return torch.cat([unit * math.sqrt(1.0 - weight), probabilities.sqrt() * math.sqrt(weight)], dim=-1)


class DualEncoder(nn.Module):
    """Image tower and text tower projecting into one joint space (open_clip-style API)."""

    def __init__(
        self, config: ModelConfig, image_tower: ImageTower, text_tower: nn.Module, tokenizer: TitleTokenizer
    ):
        super().__init__()
        self.config = config
        self.image_tower = image_tower
        self.text_tower = text_tower
        self.tokenizer = tokenizer
        self.category_head = (
            CategoryHead(len(config.category_names), config.embed_dim)
            if config.category_block_weight > 0
            else None
        )

    def retrieval_embedding(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, embed_dim) tower output -> (batch, retrieval_dim) unit vectors: the normalised joint
        embedding, followed by the category block when the model has one (see ModelConfig)."""
        unit = F.normalize(features, dim=-1)
        if self.category_head is None:
            return unit
        return with_category_block(unit, self.category_head, self.config.category_block_weight)

    def encode_image(self, pixels: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """(batch, 3, size, size) -> (batch, embed_dim) raw, or (batch, retrieval_dim) unit vectors."""
        features = self.image_tower(pixels)
        return self.retrieval_embedding(features) if normalize else features

    def encode_text(
        self, token_ids: torch.Tensor, attention_mask: torch.Tensor, normalize: bool = False
    ) -> torch.Tensor:
        """(batch, length) token ids and mask -> (batch, embed_dim) raw, or (batch, retrieval_dim) unit
        vectors."""
        features = self.text_tower(token_ids, attention_mask)
        return self.retrieval_embedding(features) if normalize else features

    def forward(
        self, pixels: torch.Tensor, token_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_image(pixels), self.encode_text(token_ids, attention_mask)


def registered_combinations() -> list[tuple[str, str]]:
    """Every (image backbone, text branch) pair create_model accepts."""
    return list(product(sorted(BACKBONES), TEXT_BRANCHES))


def create_model(
    config: ModelConfig,
    pretrained: bool = True,
    tokenizer_file: str | None = None,
    encoder_config_folder: str | None = None,
) -> DualEncoder:
    """Build a DualEncoder. `pretrained=False` skips the shipped weights (used when a checkpoint's own
    weights are loaded right after), and then needs the checkpoint's tokenizer/encoder-config files."""
    if config.image_backbone not in BACKBONES:
        raise ValueError(
            f"unknown image backbone {config.image_backbone!r}; choose one of {sorted(BACKBONES)}"
        )
    if not 0 <= config.category_block_weight < 1:
        raise ValueError(f"category_block_weight must be in [0, 1), not {config.category_block_weight}")
    if config.category_block_weight > 0 and not config.category_names:
        raise ValueError(
            "category_block_weight > 0 needs category_names (training sets them from the items' article_type)"
        )
    if config.text_branch not in TEXT_BRANCHES:
        raise ValueError(f"unknown text branch {config.text_branch!r}; choose one of {TEXT_BRANCHES}")
    image_tower = ImageTower(
        config.image_backbone,
        config.embed_dim,
        image_size=config.image_size,
        trainable_blocks=config.image_trainable_blocks,
        dropout=config.image_dropout,
        pretrained=pretrained,
        weights_path=config.image_weights_path,
        frozen_batchnorm=config.image_frozen_batchnorm,
        pooling=config.image_pooling,
        projection_hidden_dim=config.projection_hidden_dim,
        projection_dropout=config.projection_dropout,
        mirror_average=config.image_mirror_average,
    )
    tokenizer = TitleTokenizer(tokenizer_file or minilm_folder() / "tokenizer.json", config.text_max_length)
    text_tower: nn.Module
    if config.text_branch == "bilstm":
        text_tower = BiLSTMTextTower(
            config.embed_dim,
            vocab_size=tokenizer.vocab_size,
            hidden_size=config.lstm_hidden_size,
            num_layers=config.lstm_num_layers,
            pretrained=pretrained,
            projection_hidden_dim=config.projection_hidden_dim,
            projection_dropout=config.projection_dropout,
        )
    else:
        text_tower = BertTextTower(
            config.embed_dim,
            trainable_layers=config.text_trainable_layers,
            pretrained=pretrained,
            encoder_config_folder=encoder_config_folder,
            projection_hidden_dim=config.projection_hidden_dim,
            projection_dropout=config.projection_dropout,
        )
    return DualEncoder(config, image_tower, text_tower, tokenizer)
