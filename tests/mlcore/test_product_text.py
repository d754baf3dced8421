"""The product texts training and search share, built without any settings."""

from mlcore.product_text import description_excerpt, text_variants


def test_the_description_keeps_whole_sentences_within_the_word_budget():
    text = "One two three. Four five six seven. Eight nine."
    assert description_excerpt(text, max_words=7) == "One two three. Four five six seven."
    assert description_excerpt(text, max_words=6) == "One two three."
    assert description_excerpt(text, max_words=100) == text


def test_a_first_sentence_longer_than_the_budget_is_cut_at_it():
    wash_care = "Wash Care Machine Wash separately in cold water Use mild detergent Do not Bleach"
    assert description_excerpt(wash_care, max_words=5) == "Wash Care Machine Wash separately"
    assert description_excerpt("", max_words=5) == ""


def test_training_sees_the_phrase_the_product_text_and_description_sentences_once_each():
    fields = {
        "title": "Juno Jacket",
        "gender": "Women",
        "colour": "Blue",
        "article_type": "Jackets",
        "attributes": {"Material": "Nylon"},
        "description": "A light shell for windy runs. Packs into its pocket. Machine wash.",
    }
    assert text_variants(fields, description_words=6) == (
        "Women Blue Nylon Jackets",
        "Juno Jacket. Women Blue Nylon Jackets. A light shell for windy runs.",
        "A light shell for windy runs.",
        "Packs into its pocket.",
    )


def test_a_title_that_says_everything_is_not_repeated_as_a_variant():
    fields = {
        "title": "Men Navy Blue Shirts",
        "gender": "Men",
        "colour": "Navy Blue",
        "article_type": "Shirts",
    }
    assert text_variants(fields, template="{attributes}") == ()
