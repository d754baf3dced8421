"""Catalogue records: identity and category classes, and the catalogue's category fields."""

from mlcore.data import CatalogItem, category_labels, category_names, identity_labels, normalised_article_type


def test_same_title_products_share_an_identity_label():
    items = [
        CatalogItem("1", "Blue  Shirt", "a.jpg"),
        CatalogItem("2", "blue shirt", "b.jpg"),
        CatalogItem("3", "Red Shirt", "c.jpg"),
    ]
    assert identity_labels(items, "title") == [0, 0, 1]
    assert identity_labels(items, "sku") == [0, 1, 2]


def test_article_types_become_category_classes():
    items = [
        CatalogItem("1", "a", "a.jpg", article_type="Shirts"),
        CatalogItem("2", "b", "b.jpg", article_type="Tshirts"),
        CatalogItem("3", "c", "c.jpg", article_type="shirts "),
        CatalogItem("4", "d", "d.jpg", article_type=""),
    ]
    assert category_labels(items) == [0, 1, 0, 2]


def test_the_category_head_names_normalised_article_types_while_metrics_compare_type_colour_gender():
    items = [
        CatalogItem("1", "a", "a.jpg", article_type=" Shirts", colour="Navy Blue", gender="Men"),
        CatalogItem("2", "b", "b.jpg", article_type="shirts", colour="White", gender="Men"),
    ]
    assert normalised_article_type(" Shirts ") == "shirts"
    assert category_names(items) == ["shirts"]
    assert items[0].type_colour_gender == (" Shirts", "Navy Blue", "Men")
    assert items[0].type_colour_gender != items[1].type_colour_gender
