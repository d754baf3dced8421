"""Configuration dataclasses for the model and for training, saved beside every checkpoint as JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT")


@dataclass
class ModelConfig:
    # Name of the image trunk in mlcore.image_tower.BACKBONES ("efficientnet-lite0", "efficientnet-b0".."b7").
    image_backbone: str = "efficientnet-lite0"
    # Side of the square the padded product photo is resized to before the trunk.
    image_size: int = 224
    # How many of the trunk's last MBConv blocks are trained (the conv head after them is trained too
    # whenever this is > 0); -1 trains the whole trunk. Frozen blocks are what cpu-fast mode caches.
    image_trainable_blocks: int = 1
    # Optional state-dict file (.pth, loaded with weights_only=True) for b0..b7, which otherwise start random.
    image_weights_path: str | None = None
    # BatchNorms of the trained tail keep their ImageNet running statistics (their scale/shift still train):
    # train and eval then behave the same, and small CPU batches do not make the statistics noisy.
    image_frozen_batchnorm: bool = True
    # Dropout before the image projection; the pooled trunk feature is large, so a little regularises it.
    image_dropout: float = 0.1
    # Text branch in mlcore.text_tower.TEXT_BRANCHES: "bilstm" or "bert" (all-MiniLM-L6-v2).
    text_branch: str = "bert"
    # Titles are short (about 12 WordPiece tokens); longer inputs are truncated.
    text_max_length: int = 48
    # bert: how many of the last transformer layers are trained (-1 = all including embeddings, 0 = frozen).
    text_trainable_layers: int = 2
    # bilstm: hidden size per direction (the pooled feature is twice this).
    lstm_hidden_size: int = 512
    # bilstm: number of stacked bidirectional layers.
    lstm_num_layers: int = 1
    # Dimension of the joint image-text space both towers project into.
    embed_dim: int = 512
    # Hidden width of both towers' projection heads: 0 is a linear map (the paper's); > 0 a two-layer MLP
    # (LayerNorm, Linear, GELU, Dropout, Linear), which a frozen trunk needs.
    projection_hidden_dim: int = 0
    # Dropout inside the MLP projection heads.
    projection_dropout: float = 0.2
    # Pooling of the image trunk's last map: "mean", or "mean+max" (both, concatenated).
    image_pooling: str = "mean"
    # At inference, embed a photo as the mean of the unit embeddings of its last feature map and of that map
    # mirrored (test-time flip augmentation). The trunk prefix runs once; only the last block, conv head and
    # projection run twice, so encoding costs about a tenth more. Off in older checkpoints.
    image_mirror_average: bool = False
    # Share of the retrieval embedding given to the category block (0 = none, the paper's embedding). With
    # w > 0 a unit embedding e becomes [sqrt(1-w) e, sqrt(w) sqrt(p)], where p is the category head's
    # probabilities over `category_names` for e: still unit length, and the cosine of two such vectors is
    # (1-w) cos(e1, e2) + w BC(p1, p2) (the Bhattacharyya coefficient, 1 for the same confident category,
    # about 0 for different ones). One vector, so pgvector's cosine index ranks by it as it is.
    category_block_weight: float = 0.0
    # Article types (normalised, sorted) the category head scores; set by training from its items.
    category_names: list[str] = dataclasses.field(default_factory=list)

    @property
    def retrieval_dim(self) -> int:
        """Length of the vectors search stores and compares: the joint space plus the category block."""
        return self.embed_dim + (len(self.category_names) if self.category_block_weight > 0 else 0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, values)


@dataclass
class TrainingConfig:
    # "cpu-fast": frozen trunk prefix, its outputs cached on disk, only the tails trained.
    # "full": every image goes through the whole (trainable part of the) trunk each step, for GPUs.
    mode: str = "cpu-fast"
    # Loss names from mlcore_train.losses.LOSSES joined with "+", optionally weighted
    # ("cmpm+cmpc+0.5*category").
    loss: str = "cmpm+cmpc"
    # Upper bound on epochs; early stopping on val usually ends the run before.
    epochs: int = 10
    # Pairs per step; bigger batches give the in-batch losses more negatives.
    batch_size: int = 128
    # Learning rate of newly initialised parts (projections, LSTM, loss classifiers).
    learning_rate: float = 1e-3
    # Learning rate of pretrained parts being fine-tuned (EfficientNet tail blocks, MiniLM layers).
    pretrained_learning_rate: float = 1e-4
    # AdamW decoupled weight decay.
    weight_decay: float = 0.01
    # Share of all steps spent warming the learning rate up linearly before the cosine decay.
    warmup_fraction: float = 0.05
    # Global gradient-norm clip; CMPC's logits can spike early on.
    grad_clip_norm: float = 5.0
    # Seed for torch, numpy and Python's random; the same seed and data give the same run on CPU.
    seed: int = 0
    # "auto" picks CUDA when available, else CPU.
    device: str = "auto"
    # Use autocast(bfloat16/float16) on CUDA; ignored on CPU.
    mixed_precision: bool = True
    # Stop after this many epochs without a better val score (0 disables early stopping).
    early_stopping_patience: int = 3
    # Wall-clock seconds the epochs may take (0: no limit), from the first epoch's start: computing the
    # features before is not counted. The first epoch always runs; from its duration, the learning-rate
    # schedule is fitted to the epochs that still fit, and no epoch is begun that would end past the
    # limit. A resumed run has the limit again from its own first epoch.
    time_budget_s: float = 0.0
    # Identity used by the losses: "title" makes same-title products (case-insensitive) one class, like the
    # evaluation protocol does; "sku" makes every product its own class.
    identity: str = "title"
    # Share of training pairs whose text is one of the product's other texts (CatalogItem.texts: its
    # attribute phrase, product text, description sentences) instead of its title, drawn afresh each
    # epoch; 0 trains on titles alone. Validation and model selection stay on titles.
    text_variant_share: float = 0.0
    # Share of the pairs trained on the title (or other text) with a garment term swapped for another of
    # its synonym group (mlcore.fashion_vocabulary: "tee" for "tshirts", "joggers" for "track pants"),
    # where it has one, so that other shops' words for the catalogue's types land where its own do.
    synonym_share: float = 0.0
    # Share of the pairs of a product with clicked queries (CatalogItem.clicked_texts) that train on one
    # of them instead: what shoppers typed to find it.
    clicked_share: float = 0.5
    # Share of the pairs of a product with further photos (CatalogItem.further_images: back and detail
    # views, other shots) that train on one of them instead of its main photo, drawn afresh each time.
    # Validation and evaluation stay on main photos.
    further_photo_share: float = 0.5
    # Category block weights (ModelConfig.category_block_weight, each in (0, 1)) to choose from after
    # training, on val, by `mlcore.evaluation.choice_score`: the weight only mixes the category head's
    # agreement into the retrieval cosine, so the trained weights serve every candidate and a shop whose
    # types are easier or harder to read from its photos gets its own mix. Empty: keep the model's weight.
    category_block_weights: list[float] = dataclasses.field(default_factory=list)
    # Random horizontal flips (cpu-fast flips the cached feature map, full flips the photo).
    augment: bool = True
    # cpu-fast only: also extract and cache the trunk prefix of every mirrored photo (exact flip
    # augmentation, doubles the extraction time) instead of mirroring the cached map.
    cache_flipped_images: bool = False
    # Where trunk-prefix features are cached; None uses $MLCORE_CACHE_DIR or ~/.cache/mlcore.
    feature_cache_dir: str | None = None
    # Images per forward pass when extracting/encoding without gradients.
    inference_batch_size: int = 64
    # Store the checkpoint's weights as float16 (halves the folder; outputs differ by ~1e-3).
    save_fp16: bool = True
    # Threads for torch on CPU; None keeps torch's default (one per core).
    num_threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        return _from_dict(cls, values)


def _from_dict(cls: type[ConfigT], values: dict[str, Any]) -> ConfigT:
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    return cls(**values)


def save_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
