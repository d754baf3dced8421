"""Training-step throughput: the project trainer's step (mlcore_train.trainer.run_epoch) against a bare
forward/backward/step loop over the same model, loss, optimiser and batches, in the same run.
Writes the `training-throughput` section of BENCHMARKS.md.

    python bench/training.py --catalog /work/shared/datasets/myntra/catalog.jsonl \
        --split-file /work/shared/datasets/myntra/splits.json
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks_file import markdown_table, write_section  # noqa: E402
from mlcore.config import ModelConfig, TrainingConfig  # noqa: E402
from mlcore.data import category_labels, identity_labels, load_catalog  # noqa: E402
from mlcore.device import resolve_device  # noqa: E402
from mlcore.model import create_model  # noqa: E402
from mlcore_train.feature_sources import ImageFeatureSource, TextFeatureSource  # noqa: E402
from mlcore_train.losses import build_loss  # noqa: E402
from mlcore_train.trainer import (  # noqa: E402
    TrainingRun,
    build_optimizer,
    run_epoch,
    seed_everything,
    warmup_cosine,
)


def bare_loop(model, loss_fn, optimizer, maps, token_ids, labels, order, batch_size, clip):
    """The minimum a hand-written loop does: cached maps -> tail, titles -> text tower, loss, step."""
    model.train()
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        image_embeddings = model.image_tower.forward_tail(maps[torch.tensor(indices)].float())
        tokens = model.tokenizer.pad([token_ids[i] for i in indices])
        text_embeddings = model.encode_text(tokens.token_ids, tokens.attention_mask)
        loss = sum(loss_fn(image_embeddings, text_embeddings, labels[indices]).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], clip)
        optimizer.step()


def measure(model_config: ModelConfig, items, batch_size: int, repeats: int) -> dict:
    config = TrainingConfig(batch_size=batch_size, augment=False, epochs=1)
    seed_everything(0)
    device = resolve_device("cpu")
    model = create_model(model_config)
    labels = torch.tensor(identity_labels(items, config.identity))
    loss_fn = build_loss(config.loss, int(labels.max()) + 1, model_config.embed_dim)
    optimizer = build_optimizer(model, loss_fn, config)
    steps = math.ceil(len(items) / batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps * 2 * repeats + 2, 0.0))
    images = ImageFeatureSource(
        model, items, config, device, cache=True, rng=random.Random(0), progress=False
    )
    texts = TextFeatureSource(model, items, device, cache=True)
    categories = torch.tensor(category_labels(items))
    run = TrainingRun(model, loss_fn, optimizer, scheduler, images, texts, labels, categories, config, device)
    order = list(range(len(items)))
    timings = {"project trainer (run_epoch)": [], "bare loop": []}
    for _ in range(repeats):  # interleaved so that machine load hits both alike
        started = time.perf_counter()
        run_epoch(run, order, show_progress=False)
        timings["project trainer (run_epoch)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        bare_loop(
            model,
            loss_fn,
            optimizer,
            images.maps,
            texts.token_ids,
            labels,
            order,
            batch_size,
            config.grad_clip_norm,
        )
        timings["bare loop"].append(time.perf_counter() - started)
    return {name: len(items) / min(values) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--split-file", required=True)
    parser.add_argument("--pairs", type=int, default=512, help="train pairs per timed pass")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    started = time.time()
    items = load_catalog(args.catalog, args.split_file, "train")[: args.pairs]
    rows = []
    for label, model_config in (
        ("bert, last 2 layers trained (default)", ModelConfig()),
        ("bert frozen (pooled features cached)", ModelConfig(text_trainable_layers=0)),
        ("bilstm", ModelConfig(text_branch="bilstm")),
    ):
        result = measure(model_config, items, args.batch_size, args.repeats)
        project, bare = result["project trainer (run_epoch)"], result["bare loop"]
        rows.append([label, f"{project:.1f}", f"{bare:.1f}", f"{project / bare:.2f}"])
        print(label, result, flush=True)
    command = "python bench/training.py " + " ".join(sys.argv[1:])
    body = f"""## Training-step throughput (cpu-fast mode)

`{command}` — {time.time() - started:.0f} s wall time, CPU, {torch.get_num_threads()} torch threads. Pairs per
second over {args.pairs} Myntra train pairs in batches of {args.batch_size}, best of {args.repeats} interleaved
passes, CMPM+CMPC, image tail (last Lite0 block + conv head) on cached maps. "bare loop" is a hand-written
forward/backward/step over the same model, loss, optimiser and batches; the trainer's own work on top is
batching, the frozen-MiniLM feature cache, and per-term loss bookkeeping. Figures depend on machine load.

{markdown_table(["text branch", "project trainer pairs/s", "bare loop pairs/s", "ratio"], rows)}
"""
    write_section("training-throughput", body)
    print(body)


if __name__ == "__main__":
    main()
