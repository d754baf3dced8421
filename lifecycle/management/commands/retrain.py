import argparse
import time

from django.core.management.base import BaseCommand, CommandError

from lifecycle.dispatch import retrain_request_async
from lifecycle.model_versions import ModelVersionError
from lifecycle.retraining import RETRAIN_STARTS, RetrainOptions, retrain_prepare, retrain_run


def _share(value: str) -> float:
    share = float(value)
    if not 0.0 <= share <= 1.0:
        raise argparse.ArgumentTypeError(f"a share is between 0 and 1, not {value}")
    return share


class Command(BaseCommand):
    help = (
        "Train a new model on the catalogue, measure it against the active one on the same held-out "
        "products, embed the catalogue with it while the active one serves, and switch over if better."
    )

    def add_arguments(self, parser):
        parser.add_argument("--catalog", help="import this catalogue (JSONL/CSV) first")
        parser.add_argument("--split-file", help="splits.json: train on `train`, measure on `val`")
        parser.add_argument("--mode", choices=["cpu-fast", "full"], default="cpu-fast")
        parser.add_argument("--epochs", type=int)
        parser.add_argument(
            "--training-minutes",
            type=float,
            help="minutes the training may take (default: PRODUCT_SEARCH_RETRAIN_TRAINING_MINUTES; "
            "0: no limit)",
        )
        parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
        parser.add_argument(
            "--async", dest="run_async", action="store_true", help="send to the `train` queue"
        )
        parser.add_argument("--no-activate", action="store_true", help="leave the new version `ready`")
        parser.add_argument("--force", action="store_true", help="activate even if it is not better")
        parser.add_argument(
            "--start",
            choices=RETRAIN_STARTS,
            default="scratch",
            help="train new heads on the active model's image trunk (default) or fine-tune the active model",
        )
        parser.add_argument(
            "--clicks",
            action="store_true",
            help="train on the queries shoppers clicked products from too (search analytics)",
        )
        parser.add_argument(
            "--text-trainable-layers",
            type=int,
            help="MiniLM layers to train (default: the active model's); 0 freezes the text tower, so "
            "training and re-embedding run the heads alone",
        )
        parser.add_argument(
            "--text-variant-share",
            type=_share,
            help="share of training pairs that use the product's attribute phrase, product text or a "
            "description sentence instead of its title (default: PRODUCT_SEARCH_RETRAIN_TEXT_VARIANT_SHARE)",
        )

    def handle(self, *args, **options):
        retrain_options = RetrainOptions(
            catalog=options["catalog"],
            split_file=options["split_file"],
            mode=options["mode"],
            epochs=options["epochs"],
            training_minutes=options["training_minutes"],
            device=options["device"],
            activate=not options["no_activate"],
            force=options["force"],
            start=options["start"],
            learn_from_clicks=options["clicks"],
            text_trainable_layers=options["text_trainable_layers"],
            text_variant_share=options["text_variant_share"],
        )
        if options["run_async"]:
            try:
                version = retrain_request_async(options=retrain_options)
            except ModelVersionError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(
                f"Queued retrain of {version.name} (version {version.pk}) on the `train` queue. Follow it "
                "with `manage.py retrain_status` or in the admin's Model versions page."
            )
            return
        started = time.perf_counter()
        version = retrain_prepare(options=retrain_options)
        self.stdout.write(f"Retraining as {version.name} (version {version.pk}).")
        try:
            outcome = retrain_run(
                version=version, options=retrain_options, log=self.stdout.write, show_progress=True
            )
        except ModelVersionError as error:
            raise CommandError(f"{version.name} failed: {error}") from error
        except Exception as error:
            raise CommandError(
                f"{version.name} failed ({type(error).__name__}: {error}); it is marked failed and the "
                "active model keeps serving."
            ) from error
        elapsed = time.perf_counter() - started
        verb = "activated" if outcome.activated else "not activated"
        self.stdout.write(f"{outcome.version.name} {verb} after {elapsed / 60:.1f} min: {outcome.reason}")
