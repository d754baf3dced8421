"""MODEL_CARD.md is written from a model folder's files: every figure in it comes from what it was given."""

import json

import pytest

from mlcore.config import ModelConfig, TrainingConfig
from mlcore_train.model_card import write_model_card


def report(r_at_1: float) -> dict:
    direction = {"R@1": r_at_1, "R@5": 71.25, "R@10": 88.5, "medr": 2.0, "meanr": 6.75, "mAP@10": 55.5}
    return {
        "t2i": direction,
        "i2t": {**direction, "R@1": r_at_1 - 1},
        "type_p@10": 0.8125,
        "category_p@10": 0.4375,
        "category_p@10_ceiling": 0.9375,
        "gallery": 321,
    }


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    model = ModelConfig(
        projection_hidden_dim=2048,
        image_trainable_blocks=0,
        category_block_weight=0.1,
        category_names=["a", "b"],
    )
    (folder / "config.json").write_text(json.dumps({"name": "shop-model-7", "model": model.to_dict()}))
    (folder / "model.safetensors").write_bytes(b"\0" * 1000)
    metrics = {
        "val": report(48.75),
        "test": report(51.25),
        "best_epoch": 12,
        "epochs_run": 15,
        "train_products": 7654,
        "val_products": 432,
        "training_wall_time_s": 600.0,
        "feature_time_s": 42.0,
        "test_eval_time_s": 17.0,
        "training": TrainingConfig(loss="cmpm+infonce+category_nce", batch_size=256).to_dict(),
        "command": "python -m mlcore_train train --catalog shop.jsonl --split-file splits.json --out model",
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_the_card_names_the_command_metrics_and_data_it_was_given(model_folder):
    path = write_model_card(model_folder, notes="Caveat: synthetic figures.")
    card = path.read_text()
    assert path == model_folder / "MODEL_CARD.md"
    assert card.startswith("# Model card: shop-model-7\n")
    assert "python -m mlcore_train train --catalog shop.jsonl --split-file splits.json --out model" in card
    # Val and test tables each carry their own figures
    assert "| title -> photo | 48.75 | 71.25 | 88.50 | 2.0 | 6.8 | 55.50 |" in card
    assert "| photo -> title | 47.75 |" in card
    assert "| title -> photo | 51.25 |" in card
    assert (
        "type_p@10 0.812; category_p@10 0.438 (ceiling on this gallery 0.938); gallery 321 products." in card
    )
    # The data and the run
    assert "trained on `train` (7654 products)" in card and "chosen on `val` (432)" in card
    assert "Loss: cmpm+infonce+category_nce" in card and "batch 256" in card
    assert "15 epoch(s) run, epoch 12 selected on val" in card
    assert "category block of 2 article types with weight 0.1 (514 dimensions" in card
    assert "MLP projection (2048 hidden)" in card
    assert card.rstrip().endswith("Caveat: synthetic figures.")


def test_a_command_recorded_under_the_old_package_name_is_written_with_the_new_one(model_folder):
    metrics = json.loads((model_folder / "metrics.json").read_text())
    metrics["command"] = "python -m mlcore train --catalog shop.jsonl --epochs 3"
    del metrics["test"]
    (model_folder / "metrics.json").write_text(json.dumps(metrics))
    card = write_model_card(model_folder).read_text()
    assert "python -m mlcore_train train --catalog shop.jsonl --epochs 3" in card
    assert "python -m mlcore train" not in card
    assert "## Test metrics (evaluated once)\n\n(not evaluated)" in card


def test_a_category_block_weight_chosen_on_val_is_explained_with_its_scores(model_folder):
    assert "chosen on val after training" not in write_model_card(model_folder).read_text()
    metrics = json.loads((model_folder / "metrics.json").read_text())
    metrics["category_block_choice"] = {
        "trained_weight": 0.1,
        "chosen_weight": 0.2,
        "candidates": [{"weight": 0.1, "score": 368.04, "type_p@10": 0.8}, {"weight": 0.2, "score": 368.71}],
    }
    (model_folder / "metrics.json").write_text(json.dumps(metrics))
    card = write_model_card(model_folder).read_text()
    assert (
        "the weight was chosen on val after training (trained with 0.1; recall sum + 100 x type_p@10 by "
        "weight: 0.1: 368.0, 0.2: 368.7)" in card
    )


def test_a_model_trained_on_several_shops_has_each_shops_data_and_test_figures(model_folder):
    metrics = json.loads((model_folder / "metrics.json").read_text())
    del metrics["test"], metrics["test_eval_time_s"]
    metrics["command"] = (
        "python -m mlcore_train train --catalog ../shared/datasets/myntra/catalog.jsonl --split-file a.json "
        "--catalog ../shared/datasets/indofashion/catalog.jsonl --split-file b.json --out model"
    )
    metrics["test_by_shop"] = {
        "myntra": {**report(52.5), "eval_time_s": 10.0},
        "indofashion": {**report(21.25), "eval_time_s": 6.0},
        "luma": {**report(9.75), "eval_time_s": 1.0},
    }
    (model_folder / "metrics.json").write_text(json.dumps(metrics))
    (model_folder / "retrieval_examples_luma.png").write_bytes(b"png")
    card = write_model_card(model_folder).read_text()
    assert "![top photos for a few luma titles](retrieval_examples_luma.png)" in card
    assert "retrieval_examples_myntra.png" not in card
    assert "Trained on the `train` splits of myntra, indofashion (7654 products in all)" in card
    assert "and on the `test` of luma, never trained on." in card
    assert "- indofashion: IndoFashion dataset" in card and '- luma: "Magento 2 sample data' in card
    assert "### myntra (trained on its `train`)" in card
    assert "### luma (never trained on)" in card
    assert "| title -> photo | 21.25 |" in card and "| title -> photo | 9.75 |" in card
    assert "test evaluation\n17 s" in card


def test_a_one_shop_model_measured_on_others_shows_its_own_test_first(model_folder):
    metrics = json.loads((model_folder / "metrics.json").read_text())
    metrics["command"] = "python -m mlcore_train train --catalog ../shared/datasets/myntra/catalog.jsonl"
    metrics["test_by_shop"] = {"luma": {**report(9.75), "eval_time_s": 1.0}}
    (model_folder / "metrics.json").write_text(json.dumps(metrics))
    card = write_model_card(model_folder).read_text()
    assert "Trained on the `train` split of myntra (7654 products), model chosen on its `val` (432)" in card
    assert "and on the `test` of luma, never trained on." in card
    myntra, luma = (
        card.index("### myntra (trained on its `train`)"),
        card.index("### luma (never trained on)"),
    )
    assert myntra < card.index("| title -> photo | 51.25 |") < luma < card.index("| title -> photo | 9.75 |")


def test_the_card_gives_the_recorded_training_time_not_the_files(model_folder):
    metrics = json.loads((model_folder / "metrics.json").read_text())
    metrics["trained_at"] = "2026-01-02T03:04:05+00:00"
    (model_folder / "metrics.json").write_text(json.dumps(metrics))
    assert "Trained 2026-01-02 03:04 UTC." in write_model_card(model_folder).read_text()
