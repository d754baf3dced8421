from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    # A label of this plugin's own: `catalog` is a common app name in shops (docs/integration.md,
    # "App labels"). The tables keep their `catalog_` names.
    label = "product_search_catalog"
    verbose_name = "Catalogue"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the check that stops `migrate` on a database still under the old app labels.
        from catalog import app_labels  # noqa: F401
