"""Checks on catalogue values that the model fields, the admin and the importer share."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# The characters a URL path segment carries as they are (RFC 3986 `pchar` without percent-escapes):
# a product's own pages and API answers are addressed by its sku (/api/v1/products/<sku>/), so a sku
# with `/`, `?`, `#`, `%`, a backslash, a space or a control character could never be reached.
SKU_ALLOWED_CHARACTERS = "ASCII letters, digits and - . _ ~ ! $ & ' ( ) * + , ; = : @"
_SKU = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]+")


def validate_sku(value: str) -> None:
    """A sku must be usable as one URL path segment."""
    if not value:
        raise ValidationError("A SKU cannot be empty.", code="invalid_sku")
    if not _SKU.fullmatch(value):
        bad = sorted({character for character in value if not _SKU.fullmatch(character)})
        shown = ", ".join(repr(character) for character in bad)
        raise ValidationError(
            "A SKU may contain only %(allowed)s (it goes into product URLs as it is); this one has %(bad)s.",
            code="invalid_sku",
            params={"allowed": SKU_ALLOWED_CHARACTERS, "bad": shown},
        )
    if set(value) == {"."}:
        # `.` and `..` are path steps, which browsers and HTTP clients resolve away.
        raise ValidationError("A SKU cannot be made of dots only.", code="invalid_sku")
