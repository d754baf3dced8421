from django.db import migrations, models

# A start a shop edits in the admin: words fashion shoppers and shops use for the same things.
DEFAULT_GROUPS = (
    "tee, t-shirt, tshirt, tshirts",
    "trousers, pants",
    "trainers, sneakers, sports shoes",
    "jumper, sweater, pullover",
    "hoodie, hooded sweatshirt",
    "joggers, track pants, trackpants",
    "windbreaker, windcheater",
    "purse, handbag",
    "sunglasses, shades",
    "flip flops, flip-flops",
    "sweatpants, joggers",
    "tank top, vest",
)


def add_default_groups(apps, schema_editor):
    SynonymGroup = apps.get_model("product_search", "SynonymGroup")
    SynonymGroup.objects.bulk_create([SynonymGroup(terms=terms) for terms in DEFAULT_GROUPS])


class Migration(migrations.Migration):
    dependencies = [("product_search", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="SynonymGroup",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "terms",
                    models.TextField(
                        help_text="Comma-separated words or phrases that mean the same, e.g. `tee, t-shirt, "
                        "tshirt`. Each applies both ways."
                    ),
                ),
                ("is_active", models.BooleanField(default=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={'db_table': 'search_synonymgroup', "ordering": ("terms",), "verbose_name": "synonym group"},
        ),
        migrations.RunPython(add_default_groups, migrations.RunPython.noop),
    ]
