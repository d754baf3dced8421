"""The product text: what the model and the search read of what the shop wrote."""

import pytest

from catalog.product_text import (
    product_attribute_phrase,
    product_text,
    product_text_from_fields,
)
from tests.factories import ProductFactory

LUMA_HOODIE = {
    "title": "Chaz Kangeroo Hoodie",
    "gender": "Men",
    "colour": "Black",
    "article_type": "Hoodies & Sweatshirts",
    "brand": "Luma",
    "attributes": {"Material": "Wool", "pattern": "Color-Blocked", "Sizes": "XS, S, M", "Climate": "Cool"},
    "description": (
        "Ideal for cold-weather training or work outdoors, the Chaz Hoodie promises superior warmth. "
        "Thick material blocks out the wind. Machine wash/dry."
    ),
}


def test_the_attribute_phrase_reads_like_a_shoppers_query():
    phrase = product_attribute_phrase(
        gender="Men",
        colour="Black",
        article_type="Hoodies & Sweatshirts",
        attributes=LUMA_HOODIE["attributes"],
    )
    # Named attributes in the setting's order (pattern before material), matched whatever their case;
    # sizes and climate are not part of it.
    assert phrase == "Men Black Color-Blocked Wool Hoodies & Sweatshirts"


def test_the_phrase_skips_what_the_shop_left_empty_and_joins_list_values():
    assert product_attribute_phrase(gender="", colour="", article_type="Saree", attributes=None) == "Saree"
    phrase = product_attribute_phrase(
        gender="Women", colour="", article_type="Jeans", attributes={"Fit": ["Skinny", "Stretch"]}
    )
    assert phrase == "Women Skinny Stretch Jeans"


def test_the_default_template_is_title_phrase_and_description(settings):
    settings.PRODUCT_SEARCH_DESCRIPTION_WORDS = 15
    assert product_text_from_fields(LUMA_HOODIE) == (
        "Chaz Kangeroo Hoodie. Men Black Color-Blocked Wool Hoodies & Sweatshirts. Ideal for "
        "cold-weather training or work outdoors, the Chaz Hoodie promises superior warmth."
    )


def test_empty_parts_leave_no_stray_separators():
    fields = {"title": "Navy Check Shirt", "description": "", "gender": "", "colour": "", "article_type": ""}
    assert product_text_from_fields(fields) == "Navy Check Shirt"
    fields = {
        "title": "",
        "description": "Soft cotton.",
        "gender": "Men",
        "colour": "",
        "article_type": "Shirts",
    }
    assert product_text_from_fields(fields) == "Men Shirts. Soft cotton."


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{title}", "Chaz Kangeroo Hoodie"),
        ("{brand} {title} | {colour}", "Luma Chaz Kangeroo Hoodie | Black"),
        ("{title}. {no_such_field}", "Chaz Kangeroo Hoodie"),
    ],
)
def test_a_shop_sets_its_own_template(settings, template, expected):
    settings.PRODUCT_SEARCH_PRODUCT_TEXT_TEMPLATE = template
    assert product_text_from_fields(LUMA_HOODIE) == expected


@pytest.mark.django_db
def test_a_catalogue_product_reads_the_same_as_its_fields():
    product = ProductFactory(**LUMA_HOODIE)
    assert product_text(product) == product_text_from_fields(LUMA_HOODIE)
