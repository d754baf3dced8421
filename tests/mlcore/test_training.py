import json

import pytest

from mlcore.cli import main
from mlcore.config import ModelConfig, TrainingConfig
from mlcore.data import identity_labels, load_catalog
from mlcore.training import train


def test_sixteen_pairs_are_overfit_to_perfect_recall(synthetic_catalog, tmp_path):
    # Given 16 synthetic (photo, title) pairs used as both train and val
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")
    assert len(items) == 16
    stages = []
    # When the project trainer runs a few dozen single-batch steps (MiniLM text branch, projection over
    # frozen Lite0 features: the synthetic shapes are far from ImageNet, where a trained tail block's
    # frozen BatchNorm statistics do not fit)
    result = train(
        items,
        items,
        tmp_path / "model",
        ModelConfig(text_branch="bert", image_size=64, embed_dim=64, image_trainable_blocks=0),
        TrainingConfig(
            epochs=20,
            batch_size=16,
            learning_rate=3e-3,
            pretrained_learning_rate=1e-3,
            loss="infonce",
            early_stopping_patience=0,
            warmup_fraction=0.0,
            augment=False,
        ),
        progress_callback=lambda stage, epoch, total, metrics: stages.append((stage, epoch, total)),
        show_progress=False,
    )
    # Then every title finds its photo first, and vice versa
    assert result.best_val_metrics["t2i"]["R@1"] == 100.0
    assert result.best_val_metrics["i2t"]["R@1"] == 100.0
    assert stages[0] == ("features", 0, 20) and stages[-1][0] == "done"
    assert ("validate", 1, 20) in stages
    assert (tmp_path / "model" / "training_curves.png").stat().st_size > 0
    assert json.loads((tmp_path / "model" / "metrics.json").read_text())["best_epoch"] == result.best_epoch


def test_full_mode_runs_on_cpu_with_photo_augmentation(synthetic_catalog, tmp_path):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:6]
    result = train(
        items,
        items,
        tmp_path / "model",
        ModelConfig(
            text_branch="bilstm", image_size=64, lstm_hidden_size=16, embed_dim=16, image_trainable_blocks=-1
        ),
        TrainingConfig(mode="full", epochs=1, batch_size=3, loss="infonce"),
        show_progress=False,
    )
    assert result.best_epoch == 1 and (tmp_path / "model" / "model.safetensors").exists()


def test_same_title_products_share_an_identity_label():
    from mlcore.data import CatalogItem

    items = [
        CatalogItem("1", "Blue  Shirt", "a.jpg"),
        CatalogItem("2", "blue shirt", "b.jpg"),
        CatalogItem("3", "Red Shirt", "c.jpg"),
    ]
    assert identity_labels(items, "title") == [0, 0, 1]
    assert identity_labels(items, "sku") == [0, 1, 2]


def test_cli_trains_then_evaluates_with_a_json_last_line(synthetic_catalog, tmp_path, capsys):
    catalog, splits = synthetic_catalog
    out = tmp_path / "cli_model"
    assert (
        main(
            [
                "train",
                "--catalog",
                str(catalog),
                "--split-file",
                str(splits),
                "--out",
                str(out),
                "--text-branch",
                "bilstm",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--catalog",
                str(catalog),
                "--split-file",
                str(splits),
                "--split",
                "test",
                "--model",
                str(out),
                "--json",
                "--grid",
                str(tmp_path / "grid.png"),
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report["t2i"]) == {"R@1", "R@5", "R@10", "medr", "meanr", "mAP@10"}
    assert report["gallery"] == 16 and 0 <= report["type_p@10"] <= 1
    assert report["category_p@10_ceiling"] == pytest.approx(0.1)
    assert (tmp_path / "grid.png").exists()


def test_frozen_minilm_cache_gives_the_same_embeddings_as_running_the_encoder(synthetic_catalog):
    import random

    import torch

    from mlcore.embedding import encode_titles
    from mlcore.model import create_model
    from mlcore.training import ImageBatches, TextBatches

    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:5]
    model = create_model(
        ModelConfig(text_branch="bert", text_trainable_layers=0, image_size=64, embed_dim=16)
    )
    cached = TextBatches(model, items, torch.device("cpu"), cache=True)
    assert cached.pooled is not None
    expected = encode_titles(model, [item.title for item in items])
    assert torch.allclose(cached.eval_embeddings(), expected, atol=1e-5)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(
            torch.nn.functional.normalize(cached.train_embeddings([0, 1, 2]), dim=-1), expected[:3], atol=1e-5
        )
    images = ImageBatches(
        model,
        items,
        TrainingConfig(augment=False),
        torch.device("cpu"),
        cache=True,
        rng=random.Random(0),
        progress=False,
    )
    assert images.maps.shape[0] == 5
