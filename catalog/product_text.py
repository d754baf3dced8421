"""The product text with the shop's settings: what text vectors, "more like this" and retraining read.

The template and its parts are built by mlcore.product_text (shared with training); this module reads
`PRODUCT_SEARCH_PRODUCT_TEXT_TEMPLATE`, `PHRASE_ATTRIBUTES` and `DESCRIPTION_WORDS` (catalog/conf.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalog.conf import catalog_settings
from mlcore import product_text as text_builder


def _options(template: str | None) -> dict[str, Any]:
    return {
        "template": template or catalog_settings.PRODUCT_TEXT_TEMPLATE,
        "phrase_attributes": tuple(catalog_settings.PHRASE_ATTRIBUTES),
        "description_words": int(catalog_settings.DESCRIPTION_WORDS),
    }


def product_text_from_fields(fields: Mapping[str, Any], *, template: str | None = None) -> str:
    """The product text from a mapping of product fields (a model's, or a catalogue row's)."""
    return text_builder.product_text(fields, **_options(template))


def product_text(product: Any, *, template: str | None = None) -> str:
    """The text the model reads for a catalogue Product (or anything with the same attributes)."""
    return product_text_from_fields(_fields(product, template), template=template)


def product_text_variants(product: Any, *, photo_colour: str = "") -> tuple[str, ...]:
    """Texts besides the title that name the product (attribute phrase, product text, description
    sentences): what a retrain samples from, beside the title. `photo_colour` (read from its photo)
    stands in for the colour the shop left empty."""
    fields = _fields(product, None)
    if photo_colour and not str(fields.get("colour") or "").strip():
        fields["colour"] = photo_colour
    return text_builder.text_variants(fields, **_options(None))


def product_attribute_phrase(
    *, gender: str, colour: str, article_type: str, attributes: Mapping[str, Any] | None
) -> str:
    return text_builder.attribute_phrase(
        gender=gender,
        colour=colour,
        article_type=article_type,
        attributes=attributes,
        phrase_attributes=tuple(catalog_settings.PHRASE_ATTRIBUTES),
    )


def _fields(product: Any, template: str | None) -> dict[str, Any]:
    names = text_builder.template_field_names(template or catalog_settings.PRODUCT_TEXT_TEMPLATE)
    return {name: getattr(product, name, "") for name in names}
