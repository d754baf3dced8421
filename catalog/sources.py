"""Products fed from the host shop's own product model (Saleor's, django-oscar's, its own).

The host registers its model and a function that maps one of its instances to this plugin's fields,
once, in its AppConfig.ready():

    from catalog.sources import product_source_register

    product_source_register(model=Garment, to_product=garment_to_product, sku=lambda garment: garment.code)

From then on a save of a Garment upserts the plugin's Product with that sku once the transaction
commits (text, attributes and photos; a change queues new vectors as any catalogue write does), and a
delete, or a mapping that returns None (a product taken off sale), deactivates it: it leaves search.
`manage.py sync_catalog` brings every product of every registered model over again, and deactivates
the plugin's products whose source instance is gone. docs/integration.md has the whole walk-through.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import models, transaction
from django.db.models.signals import post_delete, post_save

from catalog.models import Product
from catalog.photos import PreparedPhoto, photo_prepare
from catalog.services import EDITABLE_FIELDS, UpsertOutcome, product_update, product_upsert

logger = logging.getLogger(__name__)

# What a mapping function may return: the product's fields (EDITABLE_FIELDS) and its photos in order,
# each a path, bytes, or an open binary file (a FileField's file does: `garment.photo.open("rb")`).
PHOTOS_KEY = "photos"
ToProduct = Callable[[Any], Mapping[str, Any] | None]
SkuOf = Callable[[Any], str]


class ProductSourceError(Exception):
    """A registration or a mapping this plugin cannot use; the message says which and why."""


@dataclass(frozen=True)
class ProductSource:
    model: type[models.Model]
    to_product: ToProduct
    sku: SkuOf

    @property
    def label(self) -> str:
        """Stored on each product it feeds (Product.source), so a resync knows which are its own."""
        return str(self.model._meta.label_lower)


_sources: dict[str, ProductSource] = {}


def _default_sku(model: type[models.Model]) -> SkuOf:
    prefix = model._meta.label_lower
    return lambda instance: f"{prefix}-{instance.pk}"


def product_source_register(
    *, model: type[models.Model], to_product: ToProduct, sku: SkuOf | None = None
) -> ProductSource:
    """Feed this plugin's catalogue from `model`: saves upsert, deletes deactivate, on commit.

    `to_product(instance)` returns a mapping of Product fields plus `photos`, or None when the
    instance should not be found by search. `sku(instance)` names the product (default
    `<app_label>.<model>-<pk>`); it must not change for an instance, and is read again on delete, so it
    should come from the instance's own fields.
    """
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        raise ProductSourceError(
            f"product_source_register: model must be a Django model class, not {model!r}"
        )
    if not callable(to_product):
        raise ProductSourceError("product_source_register: to_product must be a function of one instance")
    source = ProductSource(model=model, to_product=to_product, sku=sku or _default_sku(model))
    _sources[source.label] = source
    uid = f"product-search-source-{source.label}"
    post_save.connect(_on_save, sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(_on_delete, sender=model, weak=False, dispatch_uid=uid)
    return source


def product_source_unregister(*, model: type[models.Model]) -> None:
    label = model._meta.label_lower
    _sources.pop(label, None)
    uid = f"product-search-source-{label}"
    post_save.disconnect(sender=model, dispatch_uid=uid)
    post_delete.disconnect(sender=model, dispatch_uid=uid)


def product_sources() -> list[ProductSource]:
    return list(_sources.values())


def _photo(value: Any, *, sku: str) -> PreparedPhoto:
    if isinstance(value, bytes):
        return photo_prepare(io.BytesIO(value))
    if isinstance(value, str | Path) or hasattr(value, "read"):
        return photo_prepare(value)
    raise ProductSourceError(
        f"Product {sku}: a photo must be a path, bytes or an open binary file, not {type(value).__name__}"
    )


def _product_data(source: ProductSource, mapped: Mapping[str, Any], sku: str) -> dict[str, Any]:
    if not isinstance(mapped, Mapping):
        raise ProductSourceError(
            f"{source.label}: to_product returned {type(mapped).__name__}; it must return a dict of "
            "product fields or None"
        )
    unknown = set(mapped) - EDITABLE_FIELDS - {PHOTOS_KEY}
    if unknown:
        raise ProductSourceError(
            f"{source.label}: to_product returned fields this plugin does not have: "
            f"{', '.join(sorted(unknown))} (known: {', '.join(sorted(EDITABLE_FIELDS | {PHOTOS_KEY}))}; "
            "anything else goes into `attributes`)"
        )
    if not mapped.get("title"):
        raise ProductSourceError(f"{source.label}: product {sku} has no title")
    data = {name: value for name, value in mapped.items() if name != PHOTOS_KEY}
    data.setdefault("is_active", True)
    return data


@transaction.atomic
def product_source_sync(*, source: ProductSource, instance: models.Model) -> UpsertOutcome | None:
    """Bring one instance of the host's model over: upsert its product, or deactivate it when the
    mapping returns None. Returns what the upsert did (None: deactivated or absent)."""
    sku = source.sku(instance)
    mapped = source.to_product(instance)
    if mapped is None:
        product_source_deactivate(sku=sku)
        return None
    data = _product_data(source, mapped, sku)
    photos = [_photo(value, sku=sku) for value in mapped.get(PHOTOS_KEY) or ()]
    outcome = product_upsert(sku=sku, data=data, photos=photos)
    Product.objects.filter(sku=sku).exclude(source=source.label).update(source=source.label)
    return outcome


@transaction.atomic
def product_source_deactivate(*, sku: str) -> bool:
    """Take a product out of search (its row and photos stay). Returns whether it was active."""
    product = Product.objects.select_for_update().filter(sku=sku).first()
    if product is None or not product.is_active:
        return False
    return product_update(product=product, data={"is_active": False})


def _source_of(sender: type[models.Model]) -> ProductSource | None:
    return _sources.get(sender._meta.label_lower)


def _on_save(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    source = _source_of(sender)
    if source is None or kwargs.get("raw"):  # raw: loaddata, whose instances may be half-built
        return
    pk = instance.pk
    # On commit, from the database: what the shop committed, not the object as it was mid-transaction.
    transaction.on_commit(lambda: _sync_committed(source, pk), robust=True)


def _sync_committed(source: ProductSource, pk: Any) -> None:
    instance = source.model._default_manager.filter(pk=pk).first()
    if instance is None:  # deleted since; its post_delete deactivates it
        return
    try:
        product_source_sync(source=source, instance=instance)
    except Exception:
        # The shop's own save has committed and must not fail; this product waits for `sync_catalog`.
        logger.exception(
            "Could not bring %s %s into the product search catalogue; fix the cause and run "
            "`python manage.py sync_catalog`.",
            source.label,
            pk,
        )


def _on_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    source = _source_of(sender)
    if source is None:
        return
    sku = source.sku(instance)  # now: after the delete the instance cannot be read again
    transaction.on_commit(lambda: product_source_deactivate(sku=sku), robust=True)


@dataclass
class SourceSyncReport:
    source: str
    outcomes: dict[str, int] = field(default_factory=dict)
    # (sku or pk, reason) of instances that could not be brought over; the others were.
    failures: list[tuple[str, str]] = field(default_factory=list)
    deactivated_gone: int = 0


def _instances(source: ProductSource) -> Iterator[models.Model]:
    return source.model._default_manager.order_by("pk").iterator(chunk_size=200)


def product_sources_sync_all(
    *, on_instance: Callable[[ProductSource], None] | None = None
) -> list[SourceSyncReport]:
    """Every instance of every registered model, one transaction each (a bad one is reported, the
    rest still sync); then the products a source fed whose instance is gone are deactivated."""
    reports = []
    for source in product_sources():
        report = SourceSyncReport(source=source.label)
        seen: set[str] = set()
        for instance in _instances(source):
            try:
                sku = source.sku(instance)
                seen.add(sku)
                outcome = product_source_sync(source=source, instance=instance)
            except Exception as error:  # noqa: BLE001 - reported per instance, with its reason
                report.failures.append((str(instance.pk), f"{type(error).__name__}: {error}"))
            else:
                name = outcome.value if outcome else "deactivated"
                report.outcomes[name] = report.outcomes.get(name, 0) + 1
            if on_instance:
                on_instance(source)
        gone = Product.objects.filter(source=source.label, is_active=True).exclude(sku__in=seen)
        for sku in gone.values_list("sku", flat=True):
            report.deactivated_gone += int(product_source_deactivate(sku=sku))
        reports.append(report)
    return reports


def product_sources_count() -> int:
    return sum(source.model._default_manager.count() for source in product_sources())
