"""Training: explicit objects in, a checkpoint folder out. Model selection and early stopping use val only.

Modes:
- cpu-fast: the frozen trunk prefix runs once per photo (cached on disk by mlcore.feature_cache); each step
  trains the image tail (last block(s), conv head, pooling, projection) on the cached maps and the text
  branch on the titles. Flip augmentation mirrors the cached maps, or uses cached maps of mirrored photos.
- full: photos are decoded and augmented (flip, crop, colour jitter) every step; meant for a GPU.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mlcore.checkpoint import save_checkpoint
from mlcore.config import ModelConfig, TrainingConfig, save_json
from mlcore.data import CatalogItem, category_labels, category_names, identity_labels
from mlcore.embedding import encode_photos, encode_prefix_maps, encode_titles
from mlcore.evaluation import retrieval_report, selection_score
from mlcore.feature_cache import compute_prefix_maps
from mlcore.image_preprocessing import preprocess
from mlcore.losses import build_loss, category_cross_entropy
from mlcore.model import DualEncoder, create_model
from mlcore.text_tower import BertTextTower
from mlcore.training_curves import plot_training_curves

logger = logging.getLogger(__name__)

# (stage, epoch, total_epochs, metrics): stage is "features", "train", "validate" or "done".
ProgressCallback = Callable[[str, int, int, dict[str, float]], None]

MODES = ("cpu-fast", "full")


@dataclass
class TrainingResult:
    output_dir: Path
    best_epoch: int
    best_val_metrics: dict
    history: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "device='cuda' was asked for but torch sees no CUDA device; use --device auto or cpu"
        )
    return torch.device(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_optimizer(model: DualEncoder, loss: nn.Module, config: TrainingConfig) -> torch.optim.AdamW:
    """Pretrained parts (trunk tail, MiniLM layers) get the small learning rate; new parts the large one.
    Biases and norm scales are not decayed."""
    pretrained_prefixes = ("image_tower.trunk.", "text_tower.encoder.")
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    named = list(model.named_parameters()) + [(f"loss.{n}", p) for n, p in loss.named_parameters()]
    for name, parameter in named:
        if not parameter.requires_grad:
            continue
        key = (name.startswith(pretrained_prefixes), parameter.ndim >= 2)
        groups.setdefault(key, []).append(parameter)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "lr": config.pretrained_learning_rate if pretrained else config.learning_rate,
                "weight_decay": config.weight_decay if decayed else 0.0,
            }
            for (pretrained, decayed), params in groups.items()
        ]
    )


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


class ImageBatches:
    """Gives (batch, embed_dim) image embeddings for item indices, from cached maps or from photos."""

    def __init__(
        self,
        model: DualEncoder,
        items: list[CatalogItem],
        config: TrainingConfig,
        device: torch.device,
        cache: bool,
        rng: random.Random,
        progress: bool,
    ):
        self.model, self.items, self.config, self.device, self.rng = model, items, config, device, rng
        self.cached = cache
        self.maps = self.mirrored_maps = None
        # Fully frozen trunk: pooled features (and those of mirrored maps) are computed once, and a
        # step trains the projection head alone.
        self.features = self.mirrored_features = None
        if cache:
            images = [item.image for item in items]
            self.maps = compute_prefix_maps(
                model.image_tower,
                images,
                config.inference_batch_size,
                cache_dir=config.feature_cache_dir,
                device=device,
                progress=progress,
            )
            if config.cache_flipped_images and config.augment:
                self.mirrored_maps = compute_prefix_maps(
                    model.image_tower,
                    images,
                    config.inference_batch_size,
                    mirrored=True,
                    cache_dir=config.feature_cache_dir,
                    device=device,
                    progress=progress,
                )
            if model.image_tower.tail_is_frozen:
                self.features = self._pooled(self.maps)
                if config.augment or model.image_tower.mirror_average:
                    mirrored = self.mirrored_maps if self.mirrored_maps is not None else self.maps.flip(-1)
                    self.mirrored_features = self._pooled(mirrored)

    @torch.no_grad()
    def _pooled(self, maps: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        tower = self.model.image_tower
        was_training = tower.training
        tower.eval()
        pooled = torch.cat(
            [
                tower.pooled_features(maps[start : start + batch_size].to(self.device).float()).cpu()
                for start in range(0, len(maps), batch_size)
            ]
        )
        tower.train(was_training)
        return pooled

    def train_embeddings(self, indices: list[int]) -> torch.Tensor:
        tower = self.model.image_tower
        if not self.cached:
            pixels = torch.stack(
                [
                    preprocess(
                        self.items[i].image,
                        tower.image_size,
                        tower.normalisation,
                        rng=self.rng if self.config.augment else None,
                    )
                    for i in indices
                ]
            )
            return self.model.encode_image(pixels.to(self.device))
        index = torch.tensor(indices)
        if self.features is not None:
            features = self.features[index]  # (batch, feature_dim)
            if self.mirrored_features is not None and self.config.augment:
                flip = torch.rand(len(indices)) < 0.5
                features = torch.where(flip[:, None], self.mirrored_features[index], features)
            return tower.project(features.to(self.device))
        assert self.maps is not None  # cached mode
        maps = self.maps[index].float()  # (batch, C, h, w)
        if self.config.augment:
            flip = torch.rand(len(indices)) < 0.5
            if self.mirrored_maps is not None:
                maps[flip] = self.mirrored_maps[index[flip]].float()
            else:
                # Mirroring a 7x7 deep map approximates the map of the mirrored photo (ImageNet training
                # used flips, so the trunk is close to flip-equivariant) at no extraction cost.
                maps[flip] = maps[flip].flip(-1)
        return tower.forward_tail(maps.to(self.device))

    def eval_embeddings(self) -> torch.Tensor:
        if self.features is not None:
            with torch.inference_mode():
                tower = self.model.image_tower
                embeddings = tower.project(self.features.to(self.device))
                if tower.mirror_average:
                    assert self.mirrored_features is not None  # computed whenever mirror averaging is on
                    mirrored = tower.project(self.mirrored_features.to(self.device))
                    embeddings = tower.average_with_mirror(embeddings, mirrored)
                return self.model.retrieval_embedding(embeddings).float().cpu()
        if self.maps is not None:
            return encode_prefix_maps(self.model, self.maps, device=self.device)
        return encode_photos(
            self.model,
            [item.image for item in self.items],
            batch_size=self.config.inference_batch_size,
            device=self.device,
        )


# Pooled features of a frozen MiniLM, shared by runs in one process (e.g. the rows of bench/quality.py)
# that use the same encoder weights on the same titles.
_FROZEN_TEXT_FEATURES: dict[tuple, torch.Tensor] = {}


def _encoder_fingerprint(tower: BertTextTower) -> tuple:
    parameters = list(tower.encoder.parameters())
    return tuple(round(float(p.detach().double().sum()), 6) for p in (parameters[0], parameters[-1]))


class TextBatches:
    """Gives (batch, embed_dim) title embeddings for item indices. In cpu-fast mode MiniLM's frozen part runs
    once per title: a frozen encoder keeps its pooled features, so a step trains the projection alone; one
    with its last layers trained keeps the hidden states entering them, so a step runs only those layers."""

    def __init__(self, model: DualEncoder, items: list[CatalogItem], device: torch.device, cache: bool):
        self.model, self.device = model, device
        self.titles = [item.title for item in items]
        self.token_ids = model.tokenizer.encode_ids(self.titles)
        self.pooled: torch.Tensor | None = None
        self.frozen_states: list[torch.Tensor] | None = None
        tower = model.text_tower
        if cache and isinstance(tower, BertTextTower) and tower.is_frozen:
            key = (_encoder_fingerprint(tower), tuple(self.titles))
            if key not in _FROZEN_TEXT_FEATURES:
                _FROZEN_TEXT_FEATURES[key] = self._pooled_features(tower)
            self.pooled = _FROZEN_TEXT_FEATURES[key]
        elif cache and isinstance(tower, BertTextTower) and tower.frozen_layer_count > 0:
            self.frozen_states = self._frozen_states(tower)

    def _frozen_states(self, tower: BertTextTower, batch_size: int = 256) -> list[torch.Tensor]:
        """Per title, the (length, hidden) output of the embeddings and frozen layers, unpadded."""
        states: list[torch.Tensor] = [torch.empty(0)] * len(self.titles)
        for start in range(0, len(self.titles), batch_size):
            chunk = list(range(start, min(start + batch_size, len(self.titles))))
            tokens = self.model.tokenizer.pad([self.token_ids[i] for i in chunk]).to(self.device)
            hidden = tower.frozen_hidden_states(tokens.token_ids, tokens.attention_mask).float().cpu()
            for row, index in enumerate(chunk):
                states[index] = hidden[row, : len(self.token_ids[index])].clone()
        return states

    @torch.no_grad()
    def _pooled_features(self, tower: BertTextTower, batch_size: int = 256) -> torch.Tensor:
        was_training = tower.training
        tower.eval()
        order = sorted(range(len(self.titles)), key=lambda i: len(self.token_ids[i]))
        pooled = torch.empty(len(self.titles), tower.hidden_size)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            tokens = self.model.tokenizer.pad([self.token_ids[i] for i in chunk]).to(self.device)
            pooled[torch.tensor(chunk)] = (
                tower.pooled_features(tokens.token_ids, tokens.attention_mask).float().cpu()
            )
        tower.train(was_training)
        return pooled

    def train_embeddings(self, indices: list[int]) -> torch.Tensor:
        if self.pooled is not None:
            return self.model.text_tower.projection(self.pooled[torch.tensor(indices)].to(self.device))
        if self.frozen_states is not None:
            rows = [self.frozen_states[i] for i in indices]
            hidden = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (batch, length, hidden)
            lengths = torch.tensor([len(row) for row in rows])
            mask = (torch.arange(hidden.shape[1])[None, :] < lengths[:, None]).long()
            return self.model.text_tower.forward_from_frozen(hidden.to(self.device), mask.to(self.device))
        tokens = self.model.tokenizer.pad([self.token_ids[i] for i in indices]).to(self.device)
        return self.model.encode_text(tokens.token_ids, tokens.attention_mask)

    def eval_embeddings(self) -> torch.Tensor:
        if self.pooled is not None:
            with torch.inference_mode():
                return (
                    self.model.retrieval_embedding(
                        self.model.text_tower.projection(self.pooled.to(self.device))
                    )
                    .float()
                    .cpu()
                )
        return encode_titles(self.model, self.titles, device=self.device)


def validate(images: ImageBatches, texts: TextBatches, items: list[CatalogItem]) -> dict:
    """Val (or test) metrics of the model as it is now, from the same cached inputs the steps use."""
    was_training = images.model.training
    images.model.eval()
    report = retrieval_report(images.eval_embeddings().numpy(), texts.eval_embeddings().numpy(), items)
    images.model.train(was_training)
    return report


def category_head_terms(
    head: nn.Module, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor, categories: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Cross-entropy of the category head on both modalities' embeddings. The embeddings are detached: the
    head reads the joint space the retrieval losses shape and does not pull on it, so the category block is
    added on top of the embedding the paper's losses learn (on val this ranked better than letting the head's
    loss shape the space too; see docs/mlcore.md)."""
    return category_cross_entropy(
        head, image_embeddings.detach(), text_embeddings.detach(), categories, "category_head"
    )


def run_epoch(
    model: DualEncoder,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    images: ImageBatches,
    texts: TextBatches,
    labels: torch.Tensor,
    categories: torch.Tensor,
    order: list[int],
    config: TrainingConfig,
    device: torch.device,
    description: str = "train",
    show_progress: bool = True,
) -> dict[str, float]:
    """One pass over `order` in batches; returns the item-weighted sum of each loss term."""
    model.train()
    loss_fn.train()
    autocast_dtype = torch.bfloat16 if device.type == "cuda" and config.mixed_precision else None
    trainable = [p for group in optimizer.param_groups for p in group["params"]]
    term_sums: dict[str, float] = {}
    bar = tqdm(
        range(0, len(order), config.batch_size), desc=description, disable=not show_progress, unit="step"
    )
    for start in bar:
        indices = order[start : start + config.batch_size]
        if len(indices) < 2:
            continue  # in-batch losses need at least one other item
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            image_embeddings = images.train_embeddings(indices)  # (batch, dim)
            text_embeddings = texts.train_embeddings(indices)  # (batch, dim)
            terms = loss_fn(
                image_embeddings.float(),
                text_embeddings.float(),
                labels[indices].to(device),
                categories[indices].to(device),
            )
            if model.category_head is not None:
                terms.update(
                    category_head_terms(
                        model.category_head,
                        image_embeddings.float(),
                        text_embeddings.float(),
                        categories[indices].to(device),
                    )
                )
        total = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if config.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip_norm)
        optimizer.step()
        scheduler.step()
        for name, value in terms.items():
            term_sums[name] = term_sums.get(name, 0.0) + float(value.detach()) * len(indices)
        bar.set_postfix(loss=f"{float(total.detach()):.3f}")
    return term_sums


def train(
    train_items: list[CatalogItem],
    val_items: list[CatalogItem],
    output_dir: str | Path,
    model_config: ModelConfig | None = None,
    training_config: TrainingConfig | None = None,
    progress_callback: ProgressCallback | None = None,
    model: DualEncoder | None = None,
    show_progress: bool = True,
) -> TrainingResult:
    """Train a DualEncoder on (photo, title) pairs, keep the epoch with the best val score, and save it
    (weights, config, tokenizer, training curves, metrics.json) into output_dir.

    `model` lets a caller start from an existing DualEncoder (e.g. loaded from a checkpoint); otherwise
    one is created from `model_config` with the shipped pretrained weights."""
    model_config = model_config or (model.config if model is not None else ModelConfig())
    config = training_config or TrainingConfig()
    if config.mode not in MODES:
        raise ValueError(f"unknown training mode {config.mode!r}; choose one of {MODES}")
    if not train_items or not val_items:
        raise ValueError("training needs non-empty train and val item lists")
    started = time.time()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = progress_callback or (lambda stage, epoch, total, metrics: None)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    seed_everything(config.seed)
    rng = random.Random(config.seed)
    device = resolve_device(config.device)
    names = category_names(train_items)
    if model is None and model_config.category_block_weight > 0:
        # The category head scores this catalogue's article types (a retrain carries over the recipe, not
        # the previous catalogue's types).
        model_config = replace(model_config, category_names=names)
    model = (model or create_model(model_config)).to(device)
    if model.category_head is not None:
        names = model.config.category_names
    labels = torch.tensor(identity_labels(train_items, config.identity))
    categories = torch.tensor(category_labels(train_items, names))
    loss_fn = build_loss(config.loss, int(labels.max()) + 1, model_config.embed_dim, len(names)).to(device)

    report("features", 0, config.epochs, {})
    cache = config.mode == "cpu-fast"
    train_images = ImageBatches(model, train_items, config, device, cache, rng, show_progress)
    val_images = ImageBatches(model, val_items, config, device, cache, rng, show_progress)
    train_texts = TextBatches(model, train_items, device, cache)
    val_texts = TextBatches(model, val_items, device, cache)
    feature_time = time.time() - started
    logger.info("features ready in %.0fs", feature_time)

    optimizer = build_optimizer(model, loss_fn, config)
    steps_per_epoch = math.ceil(len(train_items) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(steps_per_epoch * config.epochs, config.warmup_fraction)
    )

    history: list[dict] = []
    best_score, best_epoch, best_metrics, stale_epochs = -math.inf, 0, {}, 0
    for epoch in range(1, config.epochs + 1):
        order = list(range(len(train_items)))
        rng.shuffle(order)
        term_sums = run_epoch(
            model,
            loss_fn,
            optimizer,
            scheduler,
            train_images,
            train_texts,
            labels,
            categories,
            order,
            config,
            device,
            f"epoch {epoch}/{config.epochs}",
            show_progress,
        )
        train_terms = {name: value / len(train_items) for name, value in term_sums.items()}
        train_loss = sum(train_terms.values())
        report("train", epoch, config.epochs, {"loss": train_loss, **train_terms})

        val_metrics = validate(val_images, val_texts, val_items)
        score = selection_score(val_metrics)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            **{f"train_{k}": v for k, v in train_terms.items()},
            "val_score": score,
            "val": val_metrics,
            "elapsed_s": time.time() - started,
        }
        history.append(row)
        improved = score > best_score
        logger.info(
            "epoch %d/%d loss %.4f val t2i R@1 %.2f R@10 %.2f i2t R@1 %.2f R@10 %.2f type_p@10 %.3f"
            " score %.2f%s",
            epoch,
            config.epochs,
            train_loss,
            val_metrics["t2i"]["R@1"],
            val_metrics["t2i"]["R@10"],
            val_metrics["i2t"]["R@1"],
            val_metrics["i2t"]["R@10"],
            val_metrics["type_p@10"],
            score,
            " (best)" if improved else "",
        )
        report(
            "validate",
            epoch,
            config.epochs,
            {
                "val_score": score,
                "t2i_R@1": val_metrics["t2i"]["R@1"],
                "i2t_R@1": val_metrics["i2t"]["R@1"],
                "loss": train_loss,
            },
        )
        if improved:
            best_score, best_epoch, best_metrics, stale_epochs = score, epoch, val_metrics, 0
            save_checkpoint(
                model,
                output_dir,
                fp16=config.save_fp16,
                extra={"training": config.to_dict(), "best_epoch": epoch},
            )
        else:
            stale_epochs += 1
            if config.early_stopping_patience and stale_epochs >= config.early_stopping_patience:
                logger.info("early stop: val score has not improved for %d epochs", stale_epochs)
                break

    wall_time = time.time() - started
    plot_training_curves(history, output_dir / "training_curves.png")
    save_json(
        output_dir / "metrics.json",
        {
            "val": best_metrics,
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "train_products": len(train_items),
            "val_products": len(val_items),
            "training_wall_time_s": round(wall_time, 1),
            "feature_time_s": round(feature_time, 1),
            "training": config.to_dict(),
            "history": history,
        },
    )
    report("done", best_epoch, config.epochs, {"val_score": best_score, "wall_time_s": wall_time})
    return TrainingResult(output_dir, best_epoch, best_metrics, history, wall_time)
