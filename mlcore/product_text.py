"""What the shop wrote about a product, as the texts the model reads: pure Python, no settings.

A template (`{title}. {attributes}. {description}` by default) over the title, an attribute phrase
("Women Black Skinny Jeans") and the first sentences of the description, so that shops that write style
names as titles ("Juno Jacket") and keep colour and type in fields and descriptions are read as well as
shops whose titles say everything. The Django side (catalog/product_text.py) calls these with the
shop's settings; training calls them on catalogue rows.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from typing import Any

# A sentence ends at . ! or ? followed by a space; "Machine wash/dry." keeps its slash.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SPACES = re.compile(r"\s+")

DEFAULT_TEMPLATE = "{title}. {attributes}. {description}"
# Attributes named in the phrase, matched by name case-insensitively, in this order.
DEFAULT_PHRASE_ATTRIBUTES = ("pattern", "fit", "material", "fabric", "style", "sleeve length", "neck")
DEFAULT_DESCRIPTION_WORDS = 40


def attribute_phrase(
    *,
    gender: str,
    colour: str,
    article_type: str,
    attributes: Mapping[str, Any] | None,
    phrase_attributes: Iterable[str] = DEFAULT_PHRASE_ATTRIBUTES,
) -> str:
    """ "Men Black Color-Blocked Wool Hoodies & Sweatshirts": what a shopper types to find it."""
    wanted = [name.lower() for name in phrase_attributes]
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


def description_excerpt(description: str, *, max_words: int = DEFAULT_DESCRIPTION_WORDS) -> str:
    """Whole sentences from the start, up to `max_words` words; the first sentence alone is cut at
    `max_words` when it is longer (long shop copy ends in wash care and model sizes)."""
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


def product_text(
    fields: Mapping[str, Any],
    *,
    template: str = DEFAULT_TEMPLATE,
    phrase_attributes: Iterable[str] = DEFAULT_PHRASE_ATTRIBUTES,
    description_words: int = DEFAULT_DESCRIPTION_WORDS,
) -> str:
    """The product text from a mapping of product fields (a catalogue row's, or a model's)."""
    values = {name: "" if value is None else value for name, value in fields.items()}
    values["attributes"] = _phrase(fields, phrase_attributes)
    values["description"] = description_excerpt(
        str(values.get("description", "")), max_words=description_words
    )
    return _SPACES.sub(" ", _fill(template, values)).strip()


def text_variants(
    fields: Mapping[str, Any],
    *,
    template: str = DEFAULT_TEMPLATE,
    phrase_attributes: Iterable[str] = DEFAULT_PHRASE_ATTRIBUTES,
    description_words: int = DEFAULT_DESCRIPTION_WORDS,
    description_sentence_count: int = 2,
) -> tuple[str, ...]:
    """Texts besides the title that name the product, for training: the attribute phrase, the product
    text and the first description sentences, each once and none equal to the title."""
    candidates = [
        _phrase(fields, phrase_attributes),
        product_text(
            fields,
            template=template,
            phrase_attributes=phrase_attributes,
            description_words=description_words,
        ),
        *description_sentences(str(fields.get("description") or ""))[:description_sentence_count],
    ]
    title = _SPACES.sub(" ", str(fields.get("title") or "")).strip().lower()
    unique = dict.fromkeys(text for text in candidates if text and text.strip().lower() != title)
    return tuple(unique)


def _phrase(fields: Mapping[str, Any], phrase_attributes: Iterable[str]) -> str:
    attributes = fields.get("attributes")
    return attribute_phrase(
        gender=str(fields.get("gender") or ""),
        colour=str(fields.get("colour") or ""),
        article_type=str(fields.get("article_type") or ""),
        attributes=attributes if isinstance(attributes, Mapping) else None,
        phrase_attributes=phrase_attributes,
    )


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


def template_field_names(template: str) -> list[str]:
    """The product fields a template needs: its own names plus what the phrase and excerpt read."""
    named = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    return sorted(named | {"title", "gender", "colour", "article_type", "attributes", "description"})
