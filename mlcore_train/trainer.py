"""Training: explicit objects in, a checkpoint folder out. Model selection and early stopping use val only.

Modes:
- cpu-fast: the frozen trunk prefix runs once per photo (cached on disk by mlcore_train.feature_cache); each
  step trains the image tail (last block(s), conv head, pooling, projection) on the cached maps and the text
  branch on the titles. Flip augmentation mirrors the cached maps, or uses cached maps of mirrored photos.
- full: photos are decoded and augmented (flip, crop, colour jitter) every step; meant for a GPU.
"""

from __future__ import annotations

import dataclasses
import json
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

from mlcore.checkpoint import CONFIG_FILE, load_checkpoint, save_checkpoint
from mlcore.config import ModelConfig, TrainingConfig, save_json
from mlcore.data import CatalogItem, category_labels, category_names, identity_labels
from mlcore.device import resolve_device
from mlcore.evaluation import choice_score, retrieval_report, selection_score
from mlcore.model import DualEncoder, create_model
from mlcore.photo_features import PhotoFeatureStore
from mlcore_train.feature_sources import ImageFeatureSource, TextFeatureSource
from mlcore_train.losses import build_loss, category_cross_entropy
from mlcore_train.training_curves import plot_training_curves

logger = logging.getLogger(__name__)

# (stage, epoch, total_epochs, metrics): stage is "features", "train", "validate" or "done".
ProgressCallback = Callable[[str, int, int, dict[str, float]], None]

# TrainingConfig.mode values (search has modes of its own: these are how a model is trained).
TRAINING_MODES = ("cpu-fast", "full")


@dataclass
class TrainingResult:
    output_dir: Path
    best_epoch: int
    best_val_metrics: dict
    history: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0


@dataclass
class TrainingRun:
    """What every step of one training run uses, so that `run_epoch` takes one object, not thirteen."""

    model: DualEncoder
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    images: ImageFeatureSource
    texts: TextFeatureSource
    identity_labels: torch.Tensor  # (train items,) identity class per item: the instance losses' matches
    category_labels: torch.Tensor  # (train items,) article-type class per item
    config: TrainingConfig
    device: torch.device


@dataclass
class BestEpoch:
    """The epoch kept so far (highest val score) and how many epochs have run since it."""

    score: float = -math.inf
    epoch: int = 0
    val_metrics: dict = field(default_factory=dict)
    stale_epochs: int = 0


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


def validate(images: ImageFeatureSource, texts: TextFeatureSource, items: list[CatalogItem]) -> dict:
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


def step_terms(run: TrainingRun, indices: list[int]) -> dict[str, torch.Tensor]:
    """The named loss terms of one batch: the retrieval losses' and, when the model has a category
    head, the head's."""
    device = run.device
    autocast_dtype = torch.bfloat16 if device.type == "cuda" and run.config.mixed_precision else None
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        image_embeddings = run.images.train_embeddings(indices)  # (batch, dim)
        text_embeddings = run.texts.train_embeddings(indices)  # (batch, dim)
        terms = run.loss_fn(
            image_embeddings.float(),
            text_embeddings.float(),
            run.identity_labels[indices].to(device),
            run.category_labels[indices].to(device),
        )
        if run.model.category_head is not None:
            terms.update(
                category_head_terms(
                    run.model.category_head,
                    image_embeddings.float(),
                    text_embeddings.float(),
                    run.category_labels[indices].to(device),
                )
            )
    return terms


def run_epoch(
    run: TrainingRun, order: list[int], *, description: str = "train", show_progress: bool = True
) -> dict[str, float]:
    """One pass over `order` (item indices) in batches; returns the item-weighted sum of each loss term."""
    run.model.train()
    run.loss_fn.train()
    config = run.config
    trainable = [p for group in run.optimizer.param_groups for p in group["params"]]
    term_sums: dict[str, float] = {}
    bar = tqdm(
        range(0, len(order), config.batch_size), desc=description, disable=not show_progress, unit="step"
    )
    for start in bar:
        indices = order[start : start + config.batch_size]
        if len(indices) < 2:
            continue  # in-batch losses need at least one other item
        terms = step_terms(run, indices)
        total = sum(terms.values())
        run.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if config.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip_norm)
        run.optimizer.step()
        run.scheduler.step()
        for name, value in terms.items():
            term_sums[name] = term_sums.get(name, 0.0) + float(value.detach()) * len(indices)
        bar.set_postfix(loss=f"{float(total.detach()):.3f}")
    return term_sums


def _check_inputs(
    config: TrainingConfig, train_items: list[CatalogItem], val_items: list[CatalogItem]
) -> None:
    if config.mode not in TRAINING_MODES:
        raise ValueError(f"unknown training mode {config.mode!r}; choose one of {TRAINING_MODES}")
    if not train_items or not val_items:
        raise ValueError("training needs non-empty train and val item lists")
    outside = [weight for weight in config.category_block_weights if not 0 < weight < 1]
    if outside:
        raise ValueError(f"category block weights must lie in (0, 1), not {outside}")


def _prepare_model(
    model: DualEncoder | None,
    model_config: ModelConfig,
    train_items: list[CatalogItem],
    device: torch.device,
) -> tuple[DualEncoder, list[str]]:
    """The model to train, on its device, and the article types its category labels index."""
    names = category_names(train_items)
    if model is None and model_config.category_block_weight > 0:
        # The category head scores this catalogue's article types (a retrain carries over the recipe, not
        # the previous catalogue's types).
        model_config = replace(model_config, category_names=names)
    model = (model or create_model(model_config)).to(device)
    if model.category_head is not None:
        names = model.config.category_names
    return model, names


def _ignore_progress(stage: str, epoch: int, total: int, metrics: dict[str, float]) -> None:
    return None


def _log_epoch(epoch: int, config: TrainingConfig, train_loss: float, val: dict, score: float, best: bool):
    logger.info(
        "epoch %d/%d loss %.4f val t2i R@1 %.2f R@10 %.2f i2t R@1 %.2f R@10 %.2f type_p@10 %.3f score %.2f%s",
        epoch,
        config.epochs,
        train_loss,
        val["t2i"]["R@1"],
        val["t2i"]["R@10"],
        val["i2t"]["R@1"],
        val["i2t"]["R@10"],
        val["type_p@10"],
        score,
        " (best)" if best else "",
    )


RESUME_FILE = "resume.pt"


def _resume_identity(run: TrainingRun, items_count: int) -> dict:
    """What a saved run must share with this one to be continued: its configs and data size."""
    return {"model": run.model.config.to_dict(), "training": run.config.to_dict(), "items": items_count}


def _save_resume_point(
    path: Path,
    run: TrainingRun,
    *,
    epoch: int,
    best: BestEpoch,
    history: list[dict],
    planned_epochs: int,
    rng: random.Random,
) -> None:
    """Everything the next epoch needs, written atomically after each epoch, so that a killed run (or a
    session that ended) continues from its last finished epoch with `resume=True`."""
    state = {
        "identity": _resume_identity(run, len(run.identity_labels)),
        "epoch": epoch,
        "model": run.model.state_dict(),
        "loss_fn": run.loss_fn.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "best": dataclasses.asdict(best),
        "history": history,
        "planned_epochs": planned_epochs,
        "rng": rng.getstate(),
        "text_rng": run.texts.rng.getstate(),
        "photo_rng": run.images.photo_rng.getstate(),
        "torch_rng": torch.get_rng_state(),
    }
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    temporary.replace(path)


def _load_resume_point(
    path: Path, run: TrainingRun, *, rng: random.Random
) -> tuple[int, BestEpoch, list[dict], int]:
    """(epochs already done, best so far, history, epochs planned) from a saved run of the same configs
    and data."""
    state = torch.load(path, weights_only=False)
    if state["identity"] != _resume_identity(run, len(run.identity_labels)):
        raise ValueError(f"{path} was saved by a run with other settings or data; remove it to start afresh")
    run.model.load_state_dict(state["model"])
    run.loss_fn.load_state_dict(state["loss_fn"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    rng.setstate(state["rng"])
    run.texts.rng.setstate(state["text_rng"])
    if "photo_rng" in state:  # saved by runs since further photos train
        run.images.photo_rng.setstate(state["photo_rng"])
    torch.set_rng_state(state["torch_rng"])
    planned_epochs = state.get("planned_epochs", run.config.epochs)
    _fit_schedule(run, planned_epochs)
    logger.info("resuming after epoch %d from %s", state["epoch"], path)
    return state["epoch"], BestEpoch(**state["best"]), state["history"], planned_epochs


def _fit_schedule(run: TrainingRun, epochs: int) -> None:
    """Warm-up and cosine decay over `epochs` instead of the configured count (the steps already taken
    keep their place in it)."""
    steps_per_epoch = math.ceil(len(run.identity_labels) / run.config.batch_size)
    factor = warmup_cosine(steps_per_epoch * epochs, run.config.warmup_fraction)
    run.scheduler.lr_lambdas = [factor] * len(run.optimizer.param_groups)


def _epochs_within_budget(config: TrainingConfig, history: list[dict], *, done: int, elapsed_s: float) -> int:
    """How many epochs the run can have in all without the next one ending past config.time_budget_s,
    judged by the mean duration of the epochs so far (at least `done`, at most config.epochs)."""
    timed = [row["epoch_s"] for row in history if "epoch_s" in row]  # none in an older resume point
    if not config.time_budget_s or not timed:
        return config.epochs
    per_epoch = sum(timed) / len(timed)
    more = int(max(0.0, config.time_budget_s - elapsed_s) // per_epoch)
    return max(done, min(config.epochs, done + more))


def _train_and_select(
    run: TrainingRun,
    val_images: ImageFeatureSource,
    val_texts: TextFeatureSource,
    val_items: list[CatalogItem],
    output_dir: Path,
    rng: random.Random,
    report: ProgressCallback,
    started: float,
    show_progress: bool,
    resume: bool = False,
) -> tuple[BestEpoch, list[dict]]:
    """Epochs of training, each validated; the best one so far is saved to output_dir. Stops early when the
    val score has not improved for `early_stopping_patience` epochs. With `resume`, a run that stopped
    part way (its resume point in output_dir) continues after its last finished epoch."""
    config = run.config
    items_count = len(run.identity_labels)
    history: list[dict] = []
    best = BestEpoch()
    resume_path = output_dir / RESUME_FILE
    # The time budget is the epochs': features computed for the first time must not leave a shop with
    # a model of one epoch.
    epochs_started = time.time()
    epoch, planned = 0, config.epochs
    if resume and resume_path.exists():
        epoch, best, history, planned = _load_resume_point(resume_path, run, rng=rng)
    while epoch < planned:
        epoch += 1
        epoch_started = time.time()
        order = list(range(items_count))
        rng.shuffle(order)
        term_sums = run_epoch(run, order, description=f"epoch {epoch}/{planned}", show_progress=show_progress)
        train_terms = {name: value / items_count for name, value in term_sums.items()}
        train_loss = sum(train_terms.values())
        report("train", epoch, planned, {"loss": train_loss, **train_terms})

        val_metrics = validate(val_images, val_texts, val_items)
        score = selection_score(val_metrics)
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                **{f"train_{k}": v for k, v in train_terms.items()},
                "val_score": score,
                "val": val_metrics,
                "elapsed_s": time.time() - started,
                "epoch_s": time.time() - epoch_started,
            }
        )
        improved = score > best.score
        _log_epoch(epoch, config, train_loss, val_metrics, score, improved)
        report(
            "validate",
            epoch,
            planned,
            {
                "val_score": score,
                "t2i_R@1": val_metrics["t2i"]["R@1"],
                "i2t_R@1": val_metrics["i2t"]["R@1"],
                "loss": train_loss,
            },
        )
        if improved:
            best = BestEpoch(score, epoch, val_metrics, 0)
            save_checkpoint(
                run.model,
                output_dir,
                fp16=config.save_fp16,
                extra={"training": config.to_dict(), "best_epoch": epoch},
            )
        else:
            best.stale_epochs += 1
        epochs_s = time.time() - epochs_started
        within_budget = _epochs_within_budget(config, history, done=epoch, elapsed_s=epochs_s)
        if within_budget < planned:
            logger.info(
                "time budget: %d epochs in all instead of %d (%.0fs of %.0fs used)",
                within_budget,
                planned,
                epochs_s,
                config.time_budget_s,
            )
            planned = within_budget
            _fit_schedule(run, planned)
        _save_resume_point(
            resume_path, run, epoch=epoch, best=best, history=history, planned_epochs=planned, rng=rng
        )
        if config.early_stopping_patience and best.stale_epochs >= config.early_stopping_patience:
            logger.info("early stop: val score has not improved for %d epochs", best.stale_epochs)
            break
    resume_path.unlink(missing_ok=True)
    return best, history


def _choose_category_block_weight(
    run: TrainingRun,
    best: BestEpoch,
    val_images: ImageFeatureSource,
    val_texts: TextFeatureSource,
    val_items: list[CatalogItem],
    output_dir: Path,
) -> dict | None:
    """The saved model's category block weight chosen among `category_block_weights` on val by
    choice_score, written into its config.json; `best` then holds the val metrics at that weight.
    None (and nothing changed) when there is nothing to choose: no candidates, no category head, or
    no epoch saved."""
    model = run.model
    candidates = run.config.category_block_weights
    if not candidates or model.category_head is None or best.epoch == 0:
        return None
    # The weights as saved (float16), which are what will serve.
    model.load_state_dict(load_checkpoint(output_dir, run.device).state_dict())
    trained = model.config.category_block_weight
    rows: list[tuple[float, float, dict]] = []  # (weight, choice score, val metrics)
    for weight in sorted({trained, *candidates}):
        model.config.category_block_weight = weight
        metrics = validate(val_images, val_texts, val_items)
        rows.append((weight, choice_score(metrics), metrics))
    # On a tie the weight the model was trained with stays.
    chosen_weight, _, chosen_metrics = max(rows, key=lambda row: (row[1], row[0] == trained))
    model.config.category_block_weight = chosen_weight
    config_path = output_dir / CONFIG_FILE
    payload = json.loads(config_path.read_text())
    payload["model"]["category_block_weight"] = chosen_weight
    save_json(config_path, payload)
    best.val_metrics = chosen_metrics
    logger.info(
        "category block weight %g chosen on val (%s)",
        chosen_weight,
        ", ".join(f"{weight:g}: {score:.1f}" for weight, score, _ in rows),
    )
    return {
        "trained_weight": trained,
        "chosen_weight": chosen_weight,
        "candidates": [
            {"weight": weight, "score": score, "type_p@10": metrics["type_p@10"]}
            for weight, score, metrics in rows
        ],
    }


def _write_run_outputs(
    output_dir: Path,
    config: TrainingConfig,
    best: BestEpoch,
    history: list[dict],
    train_count: int,
    val_count: int,
    wall_time: float,
    feature_time: float,
    block_choice: dict | None = None,
) -> None:
    """training_curves.png and metrics.json beside the saved checkpoint."""
    plot_training_curves(history, output_dir / "training_curves.png")
    save_json(
        output_dir / "metrics.json",
        {
            **({"category_block_choice": block_choice} if block_choice else {}),
            "val": best.val_metrics,
            "best_epoch": best.epoch,
            "epochs_run": len(history),
            "train_products": train_count,
            "val_products": val_count,
            "training_wall_time_s": round(wall_time, 1),
            "feature_time_s": round(feature_time, 1),
            "training": config.to_dict(),
            "history": history,
        },
    )


def train(
    train_items: list[CatalogItem],
    val_items: list[CatalogItem],
    output_dir: str | Path,
    model_config: ModelConfig | None = None,
    training_config: TrainingConfig | None = None,
    progress_callback: ProgressCallback | None = None,
    model: DualEncoder | None = None,
    show_progress: bool = True,
    feature_store: PhotoFeatureStore | None = None,
    resume: bool = False,
) -> TrainingResult:
    """Train a DualEncoder on (photo, title) pairs, keep the epoch with the best val score, and save it
    (weights, config, tokenizer, training curves, metrics.json) into output_dir.

    `model` lets a caller start from an existing DualEncoder (e.g. loaded from a checkpoint); otherwise
    one is created from `model_config` with the shipped pretrained weights. `feature_store` holds the
    photos' frozen-trunk maps under their items' `image_key` (cpu-fast mode): stored photos are not read.
    With `resume`, a run of the same settings and data that stopped part way continues after its last
    finished epoch (output_dir keeps a resume point after every epoch until the run ends)."""
    model_config = model_config or (model.config if model is not None else ModelConfig())
    config = training_config or TrainingConfig()
    _check_inputs(config, train_items, val_items)
    started = time.time()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = progress_callback or _ignore_progress
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    # The order of what follows is the order the seeded generators are drawn from: keep it, or the same
    # seed stops giving the same run.
    seed_everything(config.seed)
    rng = random.Random(config.seed)
    device = resolve_device(config.device)
    model, names = _prepare_model(model, model_config, train_items, device)
    labels = torch.tensor(identity_labels(train_items, config.identity))
    categories = torch.tensor(category_labels(train_items, names))
    loss_fn = build_loss(config.loss, int(labels.max()) + 1, model_config.embed_dim, len(names)).to(device)

    report("features", 0, config.epochs, {})
    cache = config.mode == "cpu-fast"
    train_images = ImageFeatureSource(
        model,
        train_items,
        config,
        device,
        cache,
        rng,
        show_progress,
        store=feature_store,
        further_photos=True,
    )
    val_images = ImageFeatureSource(
        model, val_items, config, device, cache, rng, show_progress, store=feature_store
    )
    train_texts = TextFeatureSource(
        model,
        train_items,
        device,
        cache,
        variant_share=config.text_variant_share,
        seed=config.seed,
        clicked_share=config.clicked_share,
        synonym_share=config.synonym_share,
    )
    val_texts = TextFeatureSource(model, val_items, device, cache)
    feature_time = time.time() - started
    logger.info("features ready in %.0fs", feature_time)

    optimizer = build_optimizer(model, loss_fn, config)
    steps_per_epoch = math.ceil(len(train_items) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(steps_per_epoch * config.epochs, config.warmup_fraction)
    )
    run = TrainingRun(
        model, loss_fn, optimizer, scheduler, train_images, train_texts, labels, categories, config, device
    )
    best, history = _train_and_select(
        run, val_images, val_texts, val_items, output_dir, rng, report, started, show_progress, resume
    )
    block_choice = _choose_category_block_weight(run, best, val_images, val_texts, val_items, output_dir)
    wall_time = time.time() - started
    _write_run_outputs(
        output_dir,
        config,
        best,
        history,
        len(train_items),
        len(val_items),
        wall_time,
        feature_time,
        block_choice,
    )
    report("done", best.epoch, config.epochs, {"val_score": best.score, "wall_time_s": wall_time})
    return TrainingResult(output_dir, best.epoch, best.val_metrics, history, wall_time)
