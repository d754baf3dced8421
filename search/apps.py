from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    # django-oscar, for one, ships an app labelled `search`.
    label = "product_search"
    verbose_name = "Search"

    def ready(self) -> None:
        # A retrain asks whoever serves search to choose its settings on the shop's held-out products.
        from lifecycle.signals import search_tuning_requested
        from search.tuning import tune_for_retrain

        search_tuning_requested.connect(tune_for_retrain, weak=False, dispatch_uid="search-tuning")
        # ...and for the queries shoppers clicked its products from, to train on (search/learning.py).
        from lifecycle.signals import training_texts_requested
        from search.learning import training_texts_for_retrain

        training_texts_requested.connect(training_texts_for_retrain, weak=False, dispatch_uid="search-clicks")
        # A merchandising rule saved or deleted takes effect in this process at once.
        from search import checks, signals  # noqa: F401
