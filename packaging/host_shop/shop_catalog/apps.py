"""An app of the shop's own labelled `catalog`: the plugin's labels must not collide with it."""

from django.apps import AppConfig


class ShopCatalogConfig(AppConfig):
    name = "shop_catalog"
    label = "catalog"
