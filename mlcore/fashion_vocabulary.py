"""Words shops use for the same garment, so that a model trained on one shop reads another's wording.

A model learns its words from the catalogue it is trained on. Trained on titles that say "Tshirts" and
"Track Pants", its text side has no place for "Tee" or "Jogger", which another shop writes for the
same things: such a title lands near whatever its other words suggest (a style name, a brand). Training
sometimes on the title with a term swapped for another of its group (`vocabulary_variants`, used by
`TrainingConfig.synonym_share`) puts every term of a group where the catalogue's own term is.

The groups are plain shop English, singular and plural, and only terms that name the same thing: a
sweatshirt is not always a hoodie, so those two are not one group. Search has its own, editable,
synonym table (search.models.SynonymGroup); this one is fixed with the model it trains.
"""

from __future__ import annotations

import random
import re

SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("tshirt", "tshirts", "t-shirt", "t-shirts", "tee", "tees"),
    ("trousers", "trouser", "pants", "pant"),
    ("track pants", "track pant", "joggers", "jogger", "sweatpants"),
    ("sports shoes", "sneakers", "trainers", "running shoes"),
    ("sweater", "sweaters", "jumper", "jumpers", "pullover"),
    ("hoodie", "hoodies", "hooded sweatshirt"),
    ("shorts", "short"),
    ("vest", "vests", "tank top", "tank tops", "tank", "tanks"),
    ("handbag", "handbags", "purse", "purses"),
    ("backpack", "backpacks", "rucksack"),
    ("windbreaker", "windcheater"),
    ("flip flops", "flip-flops"),
    ("sunglasses", "shades"),
    ("leggings", "tights"),
)

_GROUP_OF = {term: group for group in SYNONYM_GROUPS for term in group}
# Longest terms first, so that "track pants" is one term rather than "track" and "pants".
_TERMS = re.compile(
    r"\b(" + "|".join(re.escape(term) for term in sorted(_GROUP_OF, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def vocabulary_variants(text: str, *, count: int = 3) -> tuple[str, ...]:
    """Up to `count` distinct versions of `text` with each term of a synonym group swapped for another
    term of its group (lower case), drawn by a generator seeded with the text: the same text always gives
    the same variants. Empty when the text has no such term."""
    if not _TERMS.search(text):
        return ()
    rng = random.Random(text)

    def swap(match: re.Match) -> str:
        term = match.group(0).lower()
        return rng.choice([other for other in _GROUP_OF[term] if other != term])

    variants: dict[str, None] = {}
    for _ in range(3 * count):
        variant = _TERMS.sub(swap, text)
        if variant != text:
            variants[variant] = None
        if len(variants) == count:
            break
    return tuple(variants)
