"""What a search can be narrowed by and what its facets count, defined once.

The ranking SQL, the API's serializers and the storefront page all read these.
"""

# Product columns a search can be filtered on; the API parameter has the column's name. Values of one
# filter are ORed, filters are ANDed.
FILTER_COLUMNS = ("gender", "master_category", "sub_category", "article_type", "colour", "brand")
# Facet name in the API -> the product column it counts, which is also the filter that selects a value.
FACETS = {"category": "article_type", "colour": "colour", "brand": "brand", "gender": "gender"}
