"""An app of the shop's own labelled `search`, as django-oscar ships one: the plugin's labels must
not collide with it."""

from django.apps import AppConfig


class ShopSearchConfig(AppConfig):
    name = "shop_search"
    label = "search"
