"""What the shop wrote about a product, as the text the model and the search read.

One place builds it, from a configurable template (`PRODUCT_SEARCH_PRODUCT_TEXT_TEMPLATE`): the title,
an attribute phrase ("Women Black Skinny Jeans") and the first sentences of the description. Shops
that write style names as titles ("Juno Jacket") and put colour and type in fields and descriptions
are read as well as shops whose titles say everything.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from typing import Any

from catalog.conf import catalog_settings

# A sentence ends at . ! or ? followed by a space; "Machine wash/dry." keeps its slash.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SPACES = re.compile(r"\s+")


def product_attribute_phrase(
    *, gender: str, colour: str, article_type: str, attributes: Mapping[str, Any] | None
) -> str:
    """ "Men Black Color-Blocked Wool Hoodies & Sweatshirts": what a shopper types to find it."""
    wanted = [name.lower() for name in catalog_settings.PHRASE_ATTRIBUTES]
    by_name = {str(name).strip().lower(): value for name, value in (attributes or {}).items()}
    described = [_attribute_text(by_name[name]) for name in wanted if name in by_name]
    words = [gender, colour, *described, article_type]
    return _SPACES.sub(" ", " ".join(word for word in words if word and word.strip())).strip()


def _attribute_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return str(value) if value is not None else ""


def description_sentences(description: str) -> list[str]:
    """The description's sentences, in order, with runs of white space made single."""
    return [part for part in _SENTENCE_END.split(_SPACES.sub(" ", description or "").strip()) if part]


def description_excerpt(description: str, *, max_words: int | None = None) -> str:
    """Whole sentences from the start, up to `max_words` words; the first sentence alone is cut at
    `max_words` when it is longer (long shop copy ends in wash care and model sizes)."""
    max_words = catalog_settings.DESCRIPTION_WORDS if max_words is None else max_words
    kept: list[str] = []
    count = 0
    for sentence in description_sentences(description):
        words = sentence.split()
        if count + len(words) > max_words:
            if not kept:
                kept.append(" ".join(words[:max_words]))
            break
        kept.append(sentence)
        count += len(words)
    return " ".join(kept)


def product_text_from_fields(fields: Mapping[str, Any], *, template: str | None = None) -> str:
    """The product text from a mapping of product fields (a model's, or a catalogue row's)."""
    template = template or catalog_settings.PRODUCT_TEXT_TEMPLATE
    values = {name: "" if value is None else value for name, value in fields.items()}
    values["attributes"] = product_attribute_phrase(
        gender=str(values.get("gender", "")),
        colour=str(values.get("colour", "")),
        article_type=str(values.get("article_type", "")),
        attributes=fields.get("attributes") if isinstance(fields.get("attributes"), Mapping) else None,
    )
    values["description"] = description_excerpt(str(values.get("description", "")))
    return _SPACES.sub(" ", _fill(template, values)).strip()


def _fill(template: str, values: Mapping[str, Any]) -> str:
    """The template with its fields filled in; a field that comes out empty takes the text before it
    (its separator) along, and so does the first field that is not empty."""
    pieces: list[str] = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            if pieces:
                pieces.append(literal)
            continue
        value = values.get(name, "")
        value = string.Formatter().convert_field(value, conversion) if conversion else value
        text = format(value, spec or "").strip()
        if not text:
            continue
        pieces.append((literal if pieces else "") + text)
    return "".join(pieces)


def product_text(product: Any, *, template: str | None = None) -> str:
    """The text the model reads for a catalogue Product (or anything with the same attributes)."""
    return product_text_from_fields(
        {name: getattr(product, name, "") for name in template_field_names(template)}, template=template
    )


def template_field_names(template: str | None = None) -> Iterable[str]:
    """The product fields a template needs: its own names plus what the phrase and excerpt read."""
    template = template or catalog_settings.PRODUCT_TEXT_TEMPLATE
    named = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    return sorted(named | {"gender", "colour", "article_type", "attributes", "description"})
