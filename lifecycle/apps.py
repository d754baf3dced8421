from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    label = "product_search_lifecycle"
    verbose_name = "Search models"

    def ready(self) -> None:
        # The catalogue announces changes through a signal and knows nothing of models or Celery.
        from catalog.signals import embedding_requested
        from lifecycle.dispatch import embedding_schedule

        embedding_requested.connect(
            lambda **kwargs: embedding_schedule(), weak=False, dispatch_uid="lifecycle-embedding"
        )
