"""Titles with a garment term swapped for another of its group, for training on other shops' wording."""

from mlcore.fashion_vocabulary import SYNONYM_GROUPS, vocabulary_variants


def _group_of(term: str) -> tuple[str, ...]:
    return next(group for group in SYNONYM_GROUPS if term in group)


def test_a_term_is_swapped_for_another_of_its_group_and_the_rest_kept():
    variants = vocabulary_variants("Nike Men Blue Tshirts", count=3)
    assert len(variants) == 3
    for variant in variants:
        assert variant.startswith("Nike Men Blue ")
        swapped = variant.removeprefix("Nike Men Blue ")
        assert swapped in _group_of("tshirts") and swapped != "tshirts"


def test_a_term_of_several_words_is_swapped_whole():
    for variant in vocabulary_variants("Puma Men Black Track Pants", count=4):
        swapped = variant.removeprefix("Puma Men Black ")
        assert swapped in _group_of("track pants"), variant


def test_words_inside_other_words_are_left_alone():
    assert vocabulary_variants("Pantaloons Women Teal Kurta") == ()
    assert vocabulary_variants("Steel Watch") == ()


def test_the_same_text_gives_the_same_variants():
    assert vocabulary_variants("Strike Endurance Tee") == vocabulary_variants("Strike Endurance Tee")
    assert vocabulary_variants("Strike Endurance Tee", count=1)[0] in vocabulary_variants(
        "Strike Endurance Tee"
    )


def test_every_term_belongs_to_one_group_only():
    terms = [term for group in SYNONYM_GROUPS for term in group]
    assert len(terms) == len(set(terms))
