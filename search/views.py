from django.views.generic import ListView

from catalog.selectors import product_list_with_primary_photo


class StorefrontView(ListView):
    """The shop front. Until search lands it lists the catalogue, a page at a time."""

    template_name = "search/storefront.html"
    context_object_name = "products"
    paginate_by = 48

    def get_queryset(self):
        return product_list_with_primary_photo()
