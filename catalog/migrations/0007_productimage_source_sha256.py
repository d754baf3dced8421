from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("product_search_catalog", "0006_product_source"),
    ]

    operations = [
        migrations.AddField(
            model_name="productimage",
            name="source_sha256",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
