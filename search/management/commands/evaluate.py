import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mlcore.shop_queries import QUERY_KINDS


class Command(BaseCommand):
    help = (
        "Measure a model, or the search itself, on a catalogue split. Title queries through the model "
        "give the full report (text->image and image->text R@K, median rank, mAP@10, category precision); "
        "--query-kind attributes|description builds those queries from the split's products; --through "
        "search ranks with the search API's code over the split's products in the database."
    )

    def add_arguments(self, parser):
        parser.add_argument("--catalog", required=True, type=Path)
        parser.add_argument("--split-file", type=Path)
        parser.add_argument("--split", default="test")
        parser.add_argument("--model", default="active", help="PATH, `active` or `default` (model path)")
        parser.add_argument("--query-kind", choices=QUERY_KINDS, default="title")
        parser.add_argument(
            "--through", choices=["model", "search"], default="model", help="the model alone, or search"
        )
        parser.add_argument(
            "--mode", choices=["vector", "hybrid"], help="search mode (default: the version's)"
        )
        parser.add_argument(
            "--groups", type=Path, help="JSON sku -> group (e.g. styles.json): title relevance"
        )
        parser.add_argument("--device", default="auto")
        parser.add_argument("--grid", type=Path, help="also write a PNG grid of top results here")
        parser.add_argument("--json", action="store_true", help="last line: one JSON object")

    def handle(self, *args, **options):
        from mlcore.data import load_catalog

        try:
            items = load_catalog(
                options["catalog"], options["split_file"], options["split"] if options["split_file"] else None
            )
            groups = json.loads(options["groups"].read_text()) if options["groups"] else None
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from error
        if options["through"] == "search":
            report = self._through_search(items, groups, options)
        elif options["query_kind"] == "title" and groups is None:
            report = self._model_report(items, options)
        else:
            from mlcore.evaluation import evaluate_query_kind

            report = evaluate_query_kind(
                self._model(options), items, options["query_kind"], groups=groups, device=options["device"]
            )
        if "t2i" not in report:
            self.stdout.write(
                f"{report['kind']} queries ({report['queries']} over {report['gallery']} products"
                + (f", {report['mode']} search with {report['model_version']}" if "mode" in report else "")
                + "): "
                + ", ".join(
                    f"{name} {report[name]:.3f}"
                    for name in ("R@1", "R@10", "mAP@10", "type_p@10")
                    if name in report
                )
            )
        if options["json"]:
            self.stdout.write(json.dumps(report))

    def _model(self, options):
        from mlcore.default_model import default_model_path

        model = options["model"]
        if model == "active":
            from lifecycle.encoders import encoder_for_version
            from lifecycle.selectors import model_version_get_active

            version = model_version_get_active()
            if version is None:
                raise CommandError(
                    "No active model: run `manage.py install_default_model` or `manage.py retrain`."
                )
            return encoder_for_version(version)
        if model == "default":
            return str(default_model_path())
        if not (Path(model) / "config.json").exists():
            raise CommandError(f"No model folder at {model} (expected a config.json there).")
        return model

    def _model_report(self, items, options):
        from mlcore.evaluation import evaluate, format_report

        report = evaluate(self._model(options), items, device=options["device"], grid_path=options["grid"])
        self.stdout.write(format_report(report))
        return report

    def _through_search(self, items, groups, options):
        from search.evaluation import search_evaluate
        from search.exceptions import SearchUnavailable

        if options["model"] != "active":
            raise CommandError("--through search measures the active version: leave --model out")
        group_of = (lambda product: groups.get(product.sku, product.sku)) if groups else None
        try:
            return search_evaluate(
                skus={item.product_id for item in items},
                kind=options["query_kind"],
                mode=options["mode"],
                group_of=group_of,
            )
        except (SearchUnavailable, ValueError) as error:
            raise CommandError(str(error)) from error


def _summary(report: dict) -> str:
    where = f", {report['mode']} search with {report['model_version']}" if "mode" in report else ""
    names = [name for name in ("R@1", "R@10", "mAP@10", "type_p@10") if name in report]
    figures = ", ".join(f"{name} {report[name]:.3f}" for name in names)
    return (
        f"{report['kind']} queries ({report['queries']} over {report['gallery']} products{where}): {figures}"
    )
