import json

from django.core.management.base import BaseCommand

from lifecycle.model_versions import model_version_reap_abandoned
from lifecycle.models import ModelVersion
from lifecycle.progress import progress_summary


class Command(BaseCommand):
    help = "List model versions with their status, progress and held-out metrics."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        for name in model_version_reap_abandoned():
            self.stdout.write(f"{name}: its process is gone; marked failed.")
        versions = ModelVersion.objects.order_by("-id")
        if options["json"]:
            rows = [
                {
                    "id": v.pk,
                    "name": v.name,
                    "status": v.status,
                    "progress": v.progress,
                    "metrics": v.metrics,
                    "error": v.error,
                }
                for v in versions
            ]
            self.stdout.write(json.dumps(rows, default=str))
            return
        if not versions:
            self.stdout.write(
                "No model versions yet: `manage.py install_default_model` or `manage.py retrain`."
            )
        for version in versions:
            progress = progress_summary(version.progress)
            self.stdout.write(f"{version.pk:>4}  {version.name:<32} {version.status:<10} {progress}")
            held_out = (version.metrics or {}).get("held_out")
            if held_out:
                self.stdout.write(
                    f"      held-out t2i R@1/5/10 {held_out['t2i']['R@1']:.1f}/{held_out['t2i']['R@5']:.1f}/"
                    f"{held_out['t2i']['R@10']:.1f}, i2t R@1 {held_out['i2t']['R@1']:.1f}"
                )
            if version.error:
                self.stdout.write(f"      error: {version.error.splitlines()[0]}")
