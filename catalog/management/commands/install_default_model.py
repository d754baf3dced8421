import hashlib

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.model_versions import (
    ModelVersionError,
    model_version_activate,
    model_version_build,
    model_version_register_checkpoint,
)
from catalog.models import ModelVersion, Product
from catalog.selectors import model_version_get_active


class Command(BaseCommand):
    help = (
        "Register the model shipped in mlcore/default_model, embed the catalogue with it, and activate it "
        "when no model is active. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        from mlcore.default_model import default_model_path, describe_model

        try:
            path = default_model_path()
        except FileNotFoundError as error:
            raise CommandError(str(error)) from error
        described = describe_model(path)
        # Named by its weights, so a newer shipped model registers as a new version.
        digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()[:10]
        name = f"default-{digest}"
        version = ModelVersion.objects.filter(name=name).first()
        if version is None:
            version = model_version_register_checkpoint(
                path=path, name=name, metrics={"test": described.get("test"), "val": described.get("val")}
            )
            self.stdout.write(f"Registered {name} ({described['size_bytes'] / 2**20:.1f} MB at {path}).")
        if version.status in (
            ModelVersion.Status.EMBEDDING,
            ModelVersion.Status.READY,
            ModelVersion.Status.TRAINING,
        ):
            total = Product.objects.filter(is_active=True).count()
            with tqdm(
                total=total, unit="product", desc=f"Embedding with {name}", disable=options["no_progress"]
            ) as bar:
                report = model_version_build(
                    version=version, on_batch=lambda batch, done, total: bar.update(batch.products)
                )
            self.stdout.write(f"Embedded {report.products} products ({report.photos} photos).")
        active = model_version_get_active()
        # A shipped model replaces an older shipped one; a model the shop trained itself stays.
        if active is None or (active.pk != version.pk and active.name.startswith("default-")):
            try:
                model_version_activate(version=version)
            except ModelVersionError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(f"{name} is the active model.")
        else:
            self.stdout.write(f"Active model: {active.name} (kept).")
