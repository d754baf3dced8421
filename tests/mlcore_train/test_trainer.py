"""The trainer: it learns, keeps the best val epoch, stops early, and saves what it kept."""

import json

import pytest

from mlcore.config import ModelConfig, TrainingConfig
from mlcore.data import load_catalog
from mlcore_train import trainer
from mlcore_train.trainer import train


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


def test_full_mode_runs_on_cpu_and_keeps_the_epoch_with_the_best_val_score(synthetic_catalog, tmp_path):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:6]
    result = train(
        items,
        items,
        tmp_path / "model",
        ModelConfig(
            text_branch="bilstm", image_size=64, lstm_hidden_size=16, embed_dim=16, image_trainable_blocks=-1
        ),
        TrainingConfig(mode="full", epochs=3, batch_size=3, loss="infonce", early_stopping_patience=0),
        show_progress=False,
    )
    scores = [row["val_score"] for row in result.history]
    assert len(scores) == 3
    # The first epoch with the highest recorded val score is the one kept, saved and reported.
    assert result.best_epoch == 1 + scores.index(max(scores))
    assert result.best_val_metrics == result.history[result.best_epoch - 1]["val"]
    assert json.loads((tmp_path / "model" / "config.json").read_text())["best_epoch"] == result.best_epoch
    assert (tmp_path / "model" / "model.safetensors").exists()


def test_the_best_val_epoch_is_kept_and_training_stops_once_val_stops_improving(
    synthetic_catalog, tmp_path, monkeypatch
):
    # Given val scores that peak at epoch 2 and then fall short of it twice
    scores = iter([1.0, 3.0, 2.0, 2.5, 9.0])
    monkeypatch.setattr(trainer, "selection_score", lambda metrics: next(scores))
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:8]
    # When training may run 5 epochs with a patience of 2
    result = train(
        items,
        items,
        tmp_path / "model",
        ModelConfig(
            text_branch="bilstm", image_size=64, lstm_hidden_size=16, embed_dim=16, image_trainable_blocks=0
        ),
        TrainingConfig(epochs=5, batch_size=4, loss="infonce", early_stopping_patience=2, augment=False),
        show_progress=False,
    )
    # Then it stops after epoch 4 (the 9.0 of epoch 5 is never seen) and keeps epoch 2
    assert [row["val_score"] for row in result.history] == [1.0, 3.0, 2.0, 2.5]
    assert result.best_epoch == 2
    assert result.best_val_metrics == result.history[1]["val"]
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["best_epoch"] == 2 and metrics["epochs_run"] == 4
    assert json.loads((tmp_path / "model" / "config.json").read_text())["best_epoch"] == 2


def test_an_unknown_training_mode_is_refused_with_the_choices(synthetic_catalog, tmp_path):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:4]
    with pytest.raises(ValueError, match="choose one of \\('cpu-fast', 'full'\\)"):
        train(items, items, tmp_path / "model", training_config=TrainingConfig(mode="gpu-fast"))


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


def test_the_category_block_weight_is_chosen_on_val_and_saved_with_the_model(synthetic_catalog, tmp_path):
    from mlcore.evaluation import choice_score, evaluate

    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")
    config = ModelConfig(image_size=64, embed_dim=32, image_trainable_blocks=0, category_block_weight=0.1)
    train(
        items,
        items,
        tmp_path / "model",
        config,
        TrainingConfig(
            epochs=2, batch_size=8, loss="infonce", augment=False, category_block_weights=[0.05, 0.3, 0.6]
        ),
        show_progress=False,
    )
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    choice = metrics["category_block_choice"]
    candidates = {row["weight"]: row["score"] for row in choice["candidates"]}
    # The trained weight is always a candidate, so a choice can only improve on it.
    assert sorted(candidates) == [0.05, 0.1, 0.3, 0.6]
    assert choice["trained_weight"] == 0.1
    assert candidates[choice["chosen_weight"]] == max(candidates.values())
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["model"]["category_block_weight"] == choice["chosen_weight"]
    # The val figures kept are the chosen weight's, and the saved model reproduces them.
    assert choice_score(metrics["val"]) == pytest.approx(candidates[choice["chosen_weight"]])
    assert choice_score(evaluate(tmp_path / "model", items)) == pytest.approx(
        choice_score(metrics["val"]), abs=2.0
    )


def test_category_block_weights_outside_zero_to_one_are_refused(synthetic_catalog, tmp_path):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:4]
    with pytest.raises(ValueError, match="must lie in \\(0, 1\\)"):
        train(
            items,
            items,
            tmp_path / "model",
            training_config=TrainingConfig(category_block_weights=[0.2, 1.0]),
        )


class _Stop(Exception):
    pass


def _resumable_run(items, out, *, epochs, progress_callback=None, resume=False, time_budget_s=0.0):
    return train(
        items,
        items,
        out,
        ModelConfig(text_branch="bert", image_size=64, embed_dim=32, image_trainable_blocks=0),
        TrainingConfig(
            epochs=epochs,
            batch_size=8,
            loss="infonce",
            early_stopping_patience=0,
            text_variant_share=0.5,
            time_budget_s=time_budget_s,
            seed=3,
        ),
        progress_callback=progress_callback,
        show_progress=False,
        resume=resume,
    )


def test_a_run_stopped_part_way_resumes_to_the_same_result(synthetic_catalog, tmp_path):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")
    whole = _resumable_run(items, tmp_path / "whole", epochs=4)
    assert not (tmp_path / "whole" / trainer.RESUME_FILE).exists()  # removed once the run ends

    def stop_after_epoch_two(stage, epoch, total, metrics):
        if stage == "validate" and epoch == 2:
            raise _Stop

    # Killed while validating epoch 2: the resume point holds epoch 1, so epoch 2 runs again.
    with pytest.raises(_Stop):
        _resumable_run(items, tmp_path / "parts", epochs=4, progress_callback=stop_after_epoch_two)
    assert (tmp_path / "parts" / trainer.RESUME_FILE).exists()

    resumed = _resumable_run(items, tmp_path / "parts", epochs=4, resume=True)
    assert [row["val_score"] for row in resumed.history] == [row["val_score"] for row in whole.history]
    assert resumed.best_epoch == whole.best_epoch


def test_a_resume_point_of_other_settings_is_refused(synthetic_catalog, tmp_path):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")

    def stop(stage, epoch, total, metrics):
        if stage == "train" and epoch == 2:
            raise _Stop

    with pytest.raises(_Stop):
        _resumable_run(items, tmp_path / "run", epochs=4, progress_callback=stop)
    with pytest.raises(ValueError, match="other settings or data"):
        _resumable_run(items[:-1], tmp_path / "run", epochs=4, resume=True)


class _Clock:
    """trainer's `time`, advanced by the test: each training pass of an epoch takes `epoch_s`."""

    def __init__(self, epoch_s: float, features_s: float = 0.0):
        self.now, self.epoch_s, self.features_s = 1000.0, epoch_s, features_s

    def time(self) -> float:
        return self.now

    def on_progress(self, totals: list[int]):
        def callback(stage, epoch, total, metrics):
            if stage == "features":  # reported as the features start being computed
                self.now += self.features_s
            if stage == "train":
                self.now += self.epoch_s
                totals.append(total)

        return callback


def test_a_time_budget_fits_the_epochs_and_their_schedule_to_it(synthetic_catalog, tmp_path, monkeypatch):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")
    # Computing the features first (a first retrain, nothing stored yet) does not count against it.
    clock, totals = _Clock(epoch_s=100.0, features_s=1000.0), []
    monkeypatch.setattr(trainer, "time", clock)

    result = _resumable_run(
        items, tmp_path / "run", epochs=10, time_budget_s=350.0, progress_callback=clock.on_progress(totals)
    )

    # The first epoch ends at 100 s: two more fit in 350 s, a fourth would end at 400 s.
    assert len(result.history) == 3
    assert totals == [10, 3, 3]


def test_a_first_epoch_past_the_budget_is_the_only_one(synthetic_catalog, tmp_path, monkeypatch):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")
    clock = _Clock(epoch_s=100.0)
    monkeypatch.setattr(trainer, "time", clock)

    result = _resumable_run(
        items, tmp_path / "run", epochs=10, time_budget_s=60.0, progress_callback=clock.on_progress([])
    )

    assert len(result.history) == 1
    assert result.best_epoch == 1


def test_a_fitted_schedule_decays_to_zero_at_the_last_planned_step():
    import torch

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, trainer.warmup_cosine(100, 0.05))
    run = type("Run", (), {})()
    run.identity_labels, run.optimizer, run.scheduler = list(range(40)), optimizer, scheduler
    run.config = TrainingConfig(batch_size=8, warmup_fraction=0.05)  # 5 steps an epoch
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    halfway = optimizer.param_groups[0]["lr"]

    trainer._fit_schedule(run, epochs=3)
    for _ in range(10):
        optimizer.step()
        scheduler.step()

    assert halfway > 0.9
    assert optimizer.param_groups[0]["lr"] < 1e-9
