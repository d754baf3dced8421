from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Workers"

    def ready(self) -> None:
        from catalog.signals import embedding_requested
        from workers.dispatch import embedding_schedule

        embedding_requested.connect(
            lambda **kwargs: embedding_schedule(), weak=False, dispatch_uid="workers-embedding"
        )
