"""The catalogue import in batches: unchanged photos recognised by their source hash and not decoded,
photos prepared in worker processes, bad rows inside a batch refused alone, embedding asked for once a
batch and for changed products only."""

import concurrent.futures
import json
import os
from pathlib import Path

import pytest

from catalog import importing
from catalog.importing import catalog_import
from catalog.models import Product, ProductImage
from catalog.photos import photo_limits, photo_source_sha256
from catalog.signals import embedding_requested
from tests.conftest import make_photo_bytes

pytestmark = pytest.mark.django_db(transaction=True)

TEST_PROCESS = os.getpid()


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


@pytest.fixture
def prepared_paths(monkeypatch):
    """Every photo path sent to be decoded and re-encoded (in this process: imports of fewer photos than
    a batch sends to the workers, or `workers=1`)."""
    seen: list[str] = []
    prepare = importing.photo_prepare_files

    def counting(paths, limits):
        seen.extend(paths)
        return prepare(paths, limits)

    monkeypatch.setattr(importing, "photo_prepare_files", counting)
    return seen


@pytest.fixture
def shop(tmp_path):
    """Three products, each with its own photo file."""
    for name, colour in [("a.jpg", "navy"), ("b.jpg", "white"), ("c.png", "red")]:
        fmt = "PNG" if name.endswith(".png") else "JPEG"
        (tmp_path / name).write_bytes(make_photo_bytes(format=fmt, colour=colour))
    rows = [
        {"sku": "A", "title": "Navy Shirt", "price": "10", "image": "a.jpg"},
        {"sku": "B", "title": "White Tee", "price": "20", "image": "b.jpg"},
        {"sku": "C", "title": "Red Cap", "price": "30", "image": "c.png"},
    ]
    return tmp_path, rows


def _stored(sku: str) -> list[tuple[int, str, str, str]]:
    return list(
        ProductImage.objects.filter(product__sku=sku)
        .order_by("position")
        .values_list("pk", "image", "content_sha256", "source_sha256")
    )


def test_an_unchanged_photo_is_recognised_by_its_file_hash_and_not_decoded_again(shop, prepared_paths):
    folder, rows = shop
    path = _write_jsonl(folder / "catalog.jsonl", rows)
    first = catalog_import(path=path, workers=1)
    assert (first.created, first.updated, first.unchanged) == (3, 0, 0)
    assert len(prepared_paths) == 3
    before = {sku: _stored(sku) for sku in "ABC"}
    [(_, name, _, source)] = before["A"]
    assert source == photo_source_sha256((folder / "a.jpg").read_bytes())
    mtime = (Path(ProductImage.objects.get(pk=before["A"][0][0]).image.path)).stat().st_mtime_ns
    prepared_paths.clear()

    again = catalog_import(path=path, workers=1)

    assert (again.created, again.updated, again.unchanged, again.rejections) == (0, 0, 3, [])
    assert prepared_paths == []  # not one photo decoded
    assert {sku: _stored(sku) for sku in "ABC"} == before  # same rows, same stored names
    assert Path(ProductImage.objects.get(pk=before["A"][0][0]).image.path).stat().st_mtime_ns == mtime


def test_changed_photo_bytes_are_decoded_and_replace_the_stored_photo(shop, prepared_paths):
    folder, rows = shop
    path = _write_jsonl(folder / "catalog.jsonl", rows)
    catalog_import(path=path, workers=1)
    [(old_pk, old_name, old_content, _)] = _stored("B")
    old_file = Path(ProductImage.objects.get(pk=old_pk).image.path)
    prepared_paths.clear()

    (folder / "b.jpg").write_bytes(make_photo_bytes(colour="black"))
    report = catalog_import(path=path, workers=1)

    assert (report.updated, report.unchanged) == (1, 2)
    assert prepared_paths == [str(folder / "b.jpg")]
    [(_, name, content, source)] = _stored("B")
    assert name != old_name and content != old_content
    assert source == photo_source_sha256((folder / "b.jpg").read_bytes())
    assert not old_file.exists()  # removed once the batch committed


def test_a_photo_stored_before_source_hashes_is_decoded_once_then_skipped(shop, prepared_paths):
    folder, rows = shop
    path = _write_jsonl(folder / "catalog.jsonl", rows)
    catalog_import(path=path, workers=1)
    ProductImage.objects.update(source_sha256="")
    before = {sku: _stored(sku)[0][:3] for sku in "ABC"}
    prepared_paths.clear()

    report = catalog_import(path=path, workers=1)

    # Decoded to compare: the same stored bytes, so nothing changes but the recorded source hash.
    assert (report.updated, report.unchanged) == (0, 3) and len(prepared_paths) == 3
    assert {sku: _stored(sku)[0][:3] for sku in "ABC"} == before
    assert all(source for source in ProductImage.objects.values_list("source_sha256", flat=True))
    prepared_paths.clear()
    assert catalog_import(path=path, workers=1).unchanged == 3 and prepared_paths == []


def test_bad_rows_inside_a_batch_are_refused_alone_and_the_counts_stay_exact(shop):
    folder, rows = shop
    (folder / "broken.jpg").write_bytes(make_photo_bytes(size=(300, 300))[:200])
    path = _write_jsonl(
        folder / "catalog.jsonl",
        [
            rows[0],
            {"sku": "LONG", "title": "T" * 300, "image": "a.jpg"},  # refused by the model's validation
            rows[1],
            {"sku": "BROKEN", "title": "Broken", "image": "broken.jpg"},  # refused by the photo check
            {"sku": "A", "title": "Navy Shirt Again", "image": "a.jpg"},  # a sku twice: an update
            rows[2],
        ],
    )

    report = catalog_import(path=path, batch_size=4, workers=1)

    assert (report.created, report.updated, report.unchanged) == (3, 1, 0)
    assert [(r.line, r.sku) for r in report.rejections] == [(2, "LONG"), (4, "BROKEN")]
    assert report.rejections[0].reason.startswith("title: Ensure this value has at most 255 characters")
    assert report.rejections[1].reason.startswith("photo: The photo file is damaged")
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["A", "B", "C"]
    assert Product.objects.get(sku="A").title == "Navy Shirt Again"


def test_photos_are_prepared_in_worker_processes_and_a_bad_one_rejects_only_its_row(tmp_path):
    count = importing._PhotoPreparer.MIN_PHOTOS_FOR_WORKERS + 4
    for number in range(count):
        (tmp_path / f"{number}.jpg").write_bytes(make_photo_bytes(colour=(number * 10, 0, 0)))
    (tmp_path / "3.jpg").write_text("not a photo")
    rows = [{"sku": f"W{number}", "title": "Shirt", "image": f"{number}.jpg"} for number in range(count)]
    path = _write_jsonl(tmp_path / "catalog.jsonl", rows)

    report = catalog_import(path=path, workers=2)

    assert report.created == count - 1
    assert [(r.line, r.sku, r.reason.split(".")[0]) for r in report.rejections] == [
        (4, "W3", "photo: This file is not an image Pillow can read")
    ]
    stored = ProductImage.objects.select_related("product").get(product__sku="W5")
    assert stored.width == 64 and stored.source_sha256 == photo_source_sha256(
        (tmp_path / "5.jpg").read_bytes()
    )


def test_embedding_is_asked_for_once_a_batch_and_only_for_changed_products(shop):
    folder, rows = shop
    path = _write_jsonl(folder / "catalog.jsonl", rows)
    requests = []

    def record(**kwargs):
        requests.append(1)

    embedding_requested.connect(record, weak=False, dispatch_uid="test-import-embedding")
    try:
        catalog_import(path=path, workers=1)
        assert len(requests) == 1  # three products created in one batch: one request
        Product.objects.update(embedding_dirty=False)
        requests.clear()

        assert catalog_import(path=path, workers=1).unchanged == 3
        assert requests == [] and not Product.objects.filter(embedding_dirty=True).exists()

        rows[0]["title"] = "Navy Slim Shirt"  # text the model reads
        rows[1]["price"] = "25"  # not read by the model
        (folder / "c.png").write_bytes(make_photo_bytes(format="PNG", colour="green"))
        report = catalog_import(path=_write_jsonl(folder / "catalog.jsonl", rows), workers=1)
    finally:
        embedding_requested.disconnect(dispatch_uid="test-import-embedding")

    assert (report.updated, report.unchanged) == (3, 0)
    assert len(requests) == 1
    assert set(Product.objects.filter(embedding_dirty=True).values_list("sku", flat=True)) == {"A", "C"}
    assert str(Product.objects.get(sku="B").price) == "25.00"


def _dying_in_a_worker(paths, limits):
    """photo_prepare_files, except that a worker process running it dies (as one killed for memory)."""
    if os.getpid() != TEST_PROCESS:
        os._exit(1)
    return _dying_in_a_worker.__wrapped__(paths, limits)


def _workers_die(monkeypatch) -> None:
    """Whatever a worker is sent (photos to prepare, or to prepare and store), it dies."""
    _dying_in_a_worker.__wrapped__ = importing.photo_prepare_files
    monkeypatch.setattr(importing, "photo_prepare_files", _dying_in_a_worker)
    monkeypatch.setattr(importing, "photo_prepare_and_store_files", _dying_in_a_worker)


def test_a_photo_worker_that_dies_leaves_the_photos_to_the_importing_process(tmp_path, monkeypatch, caplog):
    count = 2 * importing._PhotoPreparer.MIN_PHOTOS_FOR_WORKERS + 8
    for number in range(count):
        (tmp_path / f"{number}.jpg").write_bytes(make_photo_bytes(colour=(0, number * 5, 0)))
    rows = [{"sku": f"D{number}", "title": "Shirt", "image": f"{number}.jpg"} for number in range(count)]
    path = _write_jsonl(tmp_path / "catalog.jsonl", rows)
    _workers_die(monkeypatch)

    # Two batches, each sent to the workers: the second before the first's photos come back broken.
    report = catalog_import(path=path, workers=2, batch_size=count // 2)

    assert (report.created, report.rejections) == (count, [])
    assert ProductImage.objects.count() == count
    assert "A photo worker process died" in caplog.text


def test_a_batch_sent_after_a_worker_died_is_prepared_in_the_importing_process(tmp_path, monkeypatch, caplog):
    count = importing._PhotoPreparer.MIN_PHOTOS_FOR_WORKERS
    paths = []
    for number in range(count):
        (tmp_path / f"{number}.jpg").write_bytes(make_photo_bytes(colour=(number * 5, 0, 0)))
        paths.append(str(tmp_path / f"{number}.jpg"))
    _workers_die(monkeypatch)
    preparer = importing._PhotoPreparer(workers=2, limits=photo_limits())
    try:
        first = preparer.submit(paths)
        # The pool is broken before the next batch is sent, as when the first batch's write is slow.
        concurrent.futures.wait(first.futures or [], return_when=concurrent.futures.ALL_COMPLETED)
        second = preparer.submit(paths)

        assert second.futures is None
        assert len(second.results()) == count
        assert len(first.results()) == count
    finally:
        preparer.close()
    assert "A photo worker process died" in caplog.text


def _files_in(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def test_photos_stored_by_the_workers_for_refused_rows_are_deleted(tmp_path, monkeypatch, settings):
    monkeypatch.setattr(importing._PhotoPreparer, "MIN_PHOTOS_FOR_WORKERS", 1)
    for number in range(6):
        (tmp_path / f"{number}.jpg").write_bytes(make_photo_bytes(colour=(number * 40, 0, 0)))
    (tmp_path / "broken.jpg").write_bytes(make_photo_bytes(size=(300, 300))[:200])
    rows = [
        {"sku": "OK1", "title": "Shirt", "images": ["0.jpg", "1.jpg"]},
        # Its first photo is stored by a worker before its second is found broken.
        {"sku": "BROKEN", "title": "Shirt", "images": ["2.jpg", "broken.jpg"]},
        # Its photo is stored, then the row fails the product's checks.
        {"sku": "BADPRICE", "title": "Shirt", "price": "123456789012.5", "image": "3.jpg"},
        {"sku": "OK2", "title": "Shirt", "image": "4.jpg"},
    ]
    path = _write_jsonl(tmp_path / "catalog.jsonl", rows)

    report = catalog_import(path=path, workers=2)

    assert report.created == 2
    assert sorted(rejection.sku for rejection in report.rejections) == ["BADPRICE", "BROKEN"]
    assert importing._PhotoPreparer(workers=2, limits=photo_limits()).store_in_workers
    assert _files_in(Path(settings.MEDIA_ROOT)) == set(ProductImage.objects.values_list("image", flat=True))
    assert ProductImage.objects.count() == 3
