"""Full-text search document of a product, for the `hybrid` search mode (search/ranking.py).

A stored generated tsvector column with a GIN index, added with SQL only: the ORM never reads or
writes it (the ranking query is raw SQL), so the Product model does not declare it and no model
state changes. Title weighs A; brand, gender, colour and article type weigh B.
"""

from django.db import migrations

ADD = """
ALTER TABLE catalog_product ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
    || setweight(to_tsvector('english'::regconfig,
        coalesce(brand, '') || ' ' || coalesce(gender, '') || ' ' || coalesce(colour, '') || ' '
        || coalesce(article_type, '')), 'B')
) STORED;
CREATE INDEX catalog_product_search_document_gin ON catalog_product USING gin (search_document);
"""

DROP = """
DROP INDEX IF EXISTS catalog_product_search_document_gin;
ALTER TABLE catalog_product DROP COLUMN IF EXISTS search_document;
"""


class Migration(migrations.Migration):
    dependencies = [("product_search_catalog", "0001_initial")]

    operations = [migrations.RunSQL(ADD, reverse_sql=DROP)]
