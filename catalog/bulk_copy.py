"""Inserting many model instances with PostgreSQL's COPY.

`bulk_create` prepares every value through its field (a few Python calls each) and sends the rows as
arrays; for a catalogue import that preparation costs more than the database's own work. COPY takes the
plain values: this module converts the few field kinds the catalogue uses and refuses any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models
from pgvector.django import HalfVectorField, VectorField
from psycopg.types.json import Jsonb

_PLAIN_FIELDS = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.DecimalField,
    models.BooleanField,
    models.ForeignKey,
)


def _converter(field: models.Field, now: datetime) -> Callable[[models.Model], Any]:
    if isinstance(field, models.DateTimeField) and (field.auto_now or field.auto_now_add):

        def timestamp(instance: models.Model) -> Any:
            setattr(instance, field.attname, now)
            return now

        return timestamp
    if isinstance(field, models.JSONField):
        return lambda instance: Jsonb(getattr(instance, field.attname))
    if isinstance(field, models.FileField):
        return lambda instance: getattr(instance, field.attname).name
    if isinstance(field, _PLAIN_FIELDS):
        return lambda instance: getattr(instance, field.attname)
    if isinstance(field, (HalfVectorField, VectorField)):
        # pgvector's fields prepare the text form PostgreSQL reads.
        return lambda instance: field.get_prep_value(getattr(instance, field.attname))
    raise TypeError(
        f"{field.model.__name__}.{field.name}: {type(field).__name__} is not handled by COPY here"
    )


def model_instances_copy(*, instances: Sequence[models.Model], now: datetime) -> None:
    """INSERT `instances` (all of one model, primary keys left to the database) in one COPY.

    Their auto_now / auto_now_add fields are set to `now`. Their primary keys are not read back: look
    them up by a unique field. No signal is sent, as with bulk_create.
    """
    if not instances:
        return
    model = type(instances[0])
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    converters = [_converter(field, now) for field in fields]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for instance in instances:
            copy.write_row([convert(instance) for convert in converters])
