"""ModelVersion and ProductEmbedding now belong to the `lifecycle` app (see its 0001).

State only: their tables stay where they are, under their `catalog_` names.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("product_search_catalog", "0002_product_search_document"),
        ("product_search_lifecycle", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ProductEmbedding"),
                migrations.DeleteModel(name="ModelVersion"),
            ],
            database_operations=[],
        ),
    ]
