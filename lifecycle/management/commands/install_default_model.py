from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.models import Product
from lifecycle.default_model import default_model_install
from lifecycle.model_versions import ModelVersionError


class Command(BaseCommand):
    help = (
        "Register the model shipped in mlcore/default_model, embed the catalogue with it, and activate it "
        "when no model is active. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        total = Product.objects.filter(is_active=True).count()
        with tqdm(total=total, unit="product", desc="Embedding", disable=options["no_progress"]) as bar:
            try:
                install = default_model_install(
                    on_batch=lambda batch, done, total: bar.update(batch.products)
                )
            except (FileNotFoundError, ModelVersionError) as error:
                raise CommandError(str(error)) from error
        version = install.version
        if install.registered:
            self.stdout.write(
                f"Registered {version.name} ({install.size_bytes / 2**20:.1f} MB at {version.artifact_path})."
            )
        if install.embedding is not None:
            self.stdout.write(
                f"Embedded {install.embedding.products} products ({install.embedding.photos} photos)."
            )
        if install.activated:
            self.stdout.write(f"{version.name} is the active model.")
        elif install.active is not None:
            self.stdout.write(f"Active model: {install.active.name} (kept).")
