import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Measure a model on a catalogue split (text->image and image->text R@K, median rank, mAP@10, "
        "category precision). --model is a checkpoint folder, `active` or `default`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--catalog", required=True, type=Path)
        parser.add_argument("--split-file", type=Path)
        parser.add_argument("--split", default="test")
        parser.add_argument("--model", default="active", help="PATH, `active` or `default`")
        parser.add_argument("--device", default="auto")
        parser.add_argument("--grid", type=Path, help="also write a PNG grid of top results here")
        parser.add_argument("--json", action="store_true", help="last line: one JSON object")

    def handle(self, *args, **options):
        from mlcore.data import load_catalog
        from mlcore.default_model import default_model_path
        from mlcore.evaluation import evaluate, format_report

        model = options["model"]
        if model == "active":
            from lifecycle.encoders import encoder_for_version
            from lifecycle.selectors import model_version_get_active

            version = model_version_get_active()
            if version is None:
                raise CommandError(
                    "No active model: run `manage.py install_default_model` or `manage.py retrain`."
                )
            model = encoder_for_version(version)
        elif model == "default":
            model = str(default_model_path())
        elif not (Path(model) / "config.json").exists():
            raise CommandError(f"No model folder at {model} (expected a config.json there).")
        try:
            items = load_catalog(
                options["catalog"], options["split_file"], options["split"] if options["split_file"] else None
            )
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from error
        report = evaluate(model, items, device=options["device"], grid_path=options["grid"])
        self.stdout.write(format_report(report))
        if options["json"]:
            self.stdout.write(json.dumps(report))
