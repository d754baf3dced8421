import json
import shutil

import pytest

from mlcore.cli import main
from mlcore.config import ModelConfig, TrainingConfig
from mlcore.data import category_labels, identity_labels, load_catalog
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


def test_article_types_become_category_classes():
    from mlcore.data import CatalogItem

    items = [
        CatalogItem("1", "a", "a.jpg", article_type="Shirts"),
        CatalogItem("2", "b", "b.jpg", article_type="Tshirts"),
        CatalogItem("3", "c", "c.jpg", article_type="shirts "),
        CatalogItem("4", "d", "d.jpg", article_type=""),
    ]
    assert category_labels(items) == [0, 1, 0, 2]


def test_weighted_category_loss_trains_beside_the_instance_loss(synthetic_catalog, tmp_path):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")
    train(
        items,
        items,
        tmp_path / "model",
        ModelConfig(image_size=64, embed_dim=32, image_trainable_blocks=0, projection_hidden_dim=64),
        TrainingConfig(epochs=2, batch_size=8, loss="cmpm+0.5*category", augment=False),
        show_progress=False,
    )
    history = json.loads((tmp_path / "model" / "metrics.json").read_text())["history"]
    # Both modalities' category terms are logged per epoch, already weighted, and fall as it learns.
    assert {"train_category_image", "train_category_text", "train_cmpm_i2t"} <= set(history[0])
    assert history[1]["train_category_text"] < history[0]["train_category_text"]


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
    assert "test" not in json.loads((out / "metrics.json").read_text())

    # --record keeps the chosen model's test report in its folder, where the model card reads it.
    args = ["evaluate", "--catalog", str(catalog), "--split-file", str(splits), "--model", str(out)]
    assert main([*args, "--split", "test", "--record"]) == 0
    recorded = json.loads((out / "metrics.json").read_text())
    assert recorded["test"]["t2i"] == report["t2i"] and recorded["test_eval_time_s"] >= 0
    assert recorded["val"] and (out / "retrieval_examples.png").exists()
    untrained = tmp_path / "copied_without_metrics"
    shutil.copytree(out, untrained)
    (untrained / "metrics.json").unlink()
    with pytest.raises(SystemExit, match="metrics.json does not exist"):
        main([*args[:-1], str(untrained), "--split", "test", "--record"])


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


def test_cached_frozen_minilm_layers_give_the_same_embeddings_as_the_whole_encoder(synthetic_catalog):
    import dataclasses

    import torch

    from mlcore.model import create_model
    from mlcore.training import TextBatches

    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:6]
    long_title = "Acme Men Very Long Striped Slim Fit Formal Cotton Blend Shirt"  # others get padded
    items[2] = dataclasses.replace(items[2], title=long_title)
    model = create_model(
        ModelConfig(text_branch="bert", text_trainable_layers=2, image_size=64, embed_dim=16)
    )
    cached = TextBatches(model, items, torch.device("cpu"), cache=True)
    uncached = TextBatches(model, items, torch.device("cpu"), cache=False)
    # Given the first 4 of MiniLM's 6 layers frozen, their outputs are kept per title, unpadded
    assert cached.frozen_states is not None and uncached.frozen_states is None
    assert [len(state) for state in cached.frozen_states] == [len(ids) for ids in cached.token_ids]
    # Then a step (the last 2 layers, pooling, projection) gives what the whole encoder gives
    model.eval()
    with torch.no_grad():
        for batch in ([0, 1, 2], [3, 4, 5], [2]):
            assert torch.allclose(cached.train_embeddings(batch), uncached.train_embeddings(batch), atol=1e-5)
    # And gradients reach the trained layers only
    model.train()
    cached.train_embeddings([0, 1, 2]).sum().backward()
    layers = model.text_tower.encoder.encoder.layer
    assert layers[5].attention.self.query.weight.grad is not None
    assert layers[3].attention.self.query.weight.grad is None


def test_category_block_is_trained_on_this_catalogues_types_and_saved(synthetic_catalog, tmp_path):
    from mlcore.data import category_names
    from mlcore.inference import Encoder

    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")
    types = category_names(items)
    assert len(types) > 1
    # A recipe carried over from a model trained on another catalogue names other types: training resets them.
    config = ModelConfig(
        image_size=64,
        embed_dim=32,
        image_trainable_blocks=0,
        category_block_weight=0.3,
        category_names=["kurtas", "sarees"],
    )
    train(
        items,
        items,
        tmp_path / "model",
        config,
        TrainingConfig(epochs=3, batch_size=8, loss="infonce", augment=False, early_stopping_patience=0),
        show_progress=False,
    )
    history = json.loads((tmp_path / "model" / "metrics.json").read_text())["history"]
    assert history[-1]["train_category_head_text"] < history[0]["train_category_head_text"]

    encoder = Encoder.load(tmp_path / "model")
    assert encoder.config.category_names == types
    assert encoder.dim == 32 + len(types)
    vectors = encoder.encode_texts([item.title for item in items[:3]])
    assert vectors.shape == (3, encoder.dim)
    assert abs(float((vectors**2).sum(axis=1).max()) - 1.0) < 1e-4
