"""The full-text document reads what the shop wrote: title (A), category fields and attribute
values (B), description (C).

Shops whose titles are style names ("Juno Jacket") keep colour, type, material and the rest in fields
and descriptions; the document had only the title and four fields. Still a stored generated column
(the ORM never reads it), rebuilt here; reversing restores the previous one.
"""

from django.db import migrations

DROP = """
DROP INDEX IF EXISTS catalog_product_search_document_gin;
ALTER TABLE catalog_product DROP COLUMN IF EXISTS search_document;
"""

# Long shop copy is cut: past its first few thousand characters it is wash care and size tables.
ADD_WITH_DESCRIPTION = """
ALTER TABLE catalog_product ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
    || setweight(to_tsvector('english'::regconfig,
        coalesce(brand, '') || ' ' || coalesce(gender, '') || ' ' || coalesce(colour, '') || ' '
        || coalesce(master_category, '') || ' ' || coalesce(sub_category, '') || ' '
        || coalesce(article_type, '')), 'B')
    || setweight(jsonb_to_tsvector('english'::regconfig, coalesce(attributes, '{}'::jsonb), '["string"]'), 'B')
    || setweight(to_tsvector('english'::regconfig, left(coalesce(description, ''), 2000)), 'C')
) STORED;
CREATE INDEX catalog_product_search_document_gin ON catalog_product USING gin (search_document);
"""

ADD_TITLE_AND_FIELDS = """
ALTER TABLE catalog_product ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
    || setweight(to_tsvector('english'::regconfig,
        coalesce(brand, '') || ' ' || coalesce(gender, '') || ' ' || coalesce(colour, '') || ' '
        || coalesce(article_type, '')), 'B')
) STORED;
CREATE INDEX catalog_product_search_document_gin ON catalog_product USING gin (search_document);
"""


class Migration(migrations.Migration):
    dependencies = [("product_search_catalog", "0003_model_lifecycle_moves_out")]

    operations = [
        migrations.RunSQL(DROP + ADD_WITH_DESCRIPTION, reverse_sql=DROP + ADD_TITLE_AND_FIELDS),
    ]
