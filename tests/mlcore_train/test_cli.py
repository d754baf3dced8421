"""`python -m mlcore_train`: train, evaluate (with --record) through the command line."""

import json
import shutil

import numpy as np
import pytest

from mlcore.data import load_catalog
from mlcore.inference import Encoder
from mlcore_train.cli import main


def brute_force_type_precision(model_folder, items, k=10) -> float:
    """Mean over title queries of the share of the k most similar photos (ties: catalogue order) of the
    query's article type."""
    encoder = Encoder.load(model_folder, device="cpu")
    photos = encoder.encode_images([item.image for item in items], batch_size=64)
    titles = encoder.encode_texts([item.title for item in items], batch_size=128)
    similarity = titles @ photos.T
    shares = []
    for query, item in enumerate(items):
        top = sorted(range(len(items)), key=lambda photo: (-similarity[query, photo], photo))[:k]
        shares.append(sum(items[photo].article_type == item.article_type for photo in top) / k)
    return float(np.mean(shares))


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
    assert report["gallery"] == 16
    # type_p@10 is what a brute-force count over the model's own rankings gives
    assert report["type_p@10"] == pytest.approx(
        brute_force_type_precision(out, load_catalog(catalog, splits, "test"))
    )
    assert report["category_p@10_ceiling"] == pytest.approx(0.1)
    assert (tmp_path / "grid.png").exists()
    assert "test" not in json.loads((out / "metrics.json").read_text())

    # --record keeps the chosen model's test report in its folder, where the model card reads it.
    args = ["evaluate", "--catalog", str(catalog), "--split-file", str(splits), "--model", str(out)]
    assert main([*args, "--split", "test", "--record"]) == 0
    recorded = json.loads((out / "metrics.json").read_text())
    assert recorded["test"]["t2i"] == report["t2i"] and recorded["test_eval_time_s"] >= 0
    assert recorded["val"] and (out / "retrieval_examples.png").exists()
    # The shops it was trained on are recorded, and --shop keeps a report as one shop's among several.
    assert recorded["shops"] == [{"name": catalog.parent.name, "train": 16, "val": 16}]
    assert recorded["trained_at"].endswith("+00:00")
    assert main([*args, "--split", "test", "--record", "--shop", "other"]) == 0
    recorded = json.loads((out / "metrics.json").read_text())
    assert recorded["test_by_shop"]["other"]["t2i"] == report["t2i"]
    assert recorded["test"]["t2i"] == report["t2i"] and (out / "retrieval_examples_other.png").exists()
    untrained = tmp_path / "copied_without_metrics"
    shutil.copytree(out, untrained)
    (untrained / "metrics.json").unlink()
    with pytest.raises(SystemExit, match="metrics.json does not exist"):
        main([*args[:-1], str(untrained), "--split", "test", "--record"])


def test_train_flags_reach_the_training_config():
    from mlcore_train.cli import _configs_from_args, _parser

    base = ["train", "--catalog", "c.jsonl", "--split-file", "s.json", "--out", "m"]
    _, defaults = _configs_from_args(_parser().parse_args(base))
    _, told = _configs_from_args(
        _parser().parse_args(base + ["--further-photo-share", "0.25", "--category-block-weights", "0.05,0.2"])
    )
    assert (defaults.further_photo_share, defaults.category_block_weights) == (0.5, [])
    assert (told.further_photo_share, told.category_block_weights) == (0.25, [0.05, 0.2])
    with pytest.raises(SystemExit):
        _parser().parse_args(base + ["--category-block-weights", "0.1,heavy"])
