from django.core.management.base import BaseCommand, CommandError

from lifecycle.model_versions import (
    ModelVersionError,
    model_version_activate,
    model_version_get,
    model_version_rollback,
)


class Command(BaseCommand):
    help = "Switch search to a model version (by id or name), or --rollback to the previous one."

    def add_arguments(self, parser):
        parser.add_argument("version", nargs="?", help="id or name (see `manage.py retrain_status`)")
        parser.add_argument("--rollback", action="store_true", help="return to the previously active version")

    def handle(self, *args, version=None, rollback=False, **options):
        if bool(version) == rollback:
            raise CommandError("Give a version id or name, or --rollback (not both).")
        try:
            if rollback:
                target = model_version_rollback()
                self.stdout.write(f"Rolled back: {target.name} is active again.")
                return
            target = model_version_get(identifier=version)
            previous = model_version_activate(version=target)
        except ModelVersionError as error:
            raise CommandError(str(error)) from error
        replaced = f" (replacing {previous.name})" if previous else ""
        self.stdout.write(f"{target.name} is now the active model{replaced}.")
