from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.models import Product
from lifecycle.embedding_pipeline import (
    embedding_mark_all_pending,
    embedding_process_pending,
    embedding_refresh_texts,
    embedding_target_versions,
)
from lifecycle.model_versions import ModelVersionError, model_version_get, model_version_rebuild
from lifecycle.models import ModelVersion
from lifecycle.selectors import model_version_get_active


class Command(BaseCommand):
    help = (
        "Embed products synchronously: the backfill, and the fallback when no worker runs. "
        "--pending (default) embeds products marked as changed; --all (re)embeds every product."
    )

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--pending", action="store_true", help="products changed since their last embedding"
        )
        group.add_argument("--all", action="store_true", help="every product, for one version")
        group.add_argument(
            "--texts",
            action="store_true",
            help="every product's text only, for one version (after the product-text template changed)",
        )
        parser.add_argument("--model-version", help="id or name (default: the active version)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        if options["all"]:
            return self._embed_all(options)
        if options["texts"]:
            return self._embed_texts(options)
        pending = Product.objects.filter(embedding_dirty=True).count()
        if not embedding_target_versions():
            raise CommandError(
                f"{pending} products wait, but there is no model version to embed them with: run "
                "`manage.py install_default_model` or `manage.py retrain`."
            )
        with tqdm(total=pending, unit="product", desc="Embedding", disable=options["no_progress"]) as bar:
            report = embedding_process_pending(on_batch=lambda batch: bar.update(batch.products))
        self._summary(report)

    def _embed_texts(self, options):
        version = self._version(options)
        total = Product.objects.filter(is_active=True).count()
        desc = f"Texts with {version.name}"
        with tqdm(total=total, unit="product", desc=desc, disable=options["no_progress"]) as bar:
            refreshed = embedding_refresh_texts(version=version, on_batch=bar.update)
        self.stdout.write(f"Embedded the text of {refreshed} products again; photo vectors are unchanged.")

    def _version(self, options) -> ModelVersion:
        try:
            version = (
                model_version_get(identifier=options["model_version"])
                if options["model_version"]
                else model_version_get_active()
            )
        except ModelVersionError as error:
            raise CommandError(str(error)) from error
        if version is None:
            raise CommandError("No active model version: pass --model-version N, or run `manage.py retrain`.")
        return version

    def _embed_all(self, options):
        version = self._version(options)
        total = Product.objects.filter(is_active=True).count()
        bar = tqdm(
            total=total, unit="product", desc=f"Embedding with {version.name}", disable=options["no_progress"]
        )
        with bar:
            if version.status == ModelVersion.Status.ACTIVE:
                embedding_mark_all_pending()
                report = embedding_process_pending(on_batch=lambda batch: bar.update(batch.products))
            else:
                try:
                    report = model_version_rebuild(
                        version=version, on_batch=lambda batch, done, total: bar.update(batch.products)
                    )
                except ModelVersionError as error:
                    raise CommandError(str(error)) from error
        self._summary(report)

    def _summary(self, report):
        self.stdout.write(f"Embedded {report.products} products ({report.photos} photos).")
        for photo_id, reason in report.failed_photos:
            self.stdout.write(f"  photo {photo_id} failed: {reason}")
