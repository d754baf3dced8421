import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog.importing import catalog_import
from catalog.models import Product, ProductImage
from tests.conftest import make_photo_bytes

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE = Path(__file__).resolve().parents[2] / "catalog" / "sample_catalog" / "catalog.jsonl"


@pytest.fixture
def catalogue(tmp_path):
    """A small catalogue with one good row of each shape and one bad row of each kind."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "good.jpg").write_bytes(make_photo_bytes())
    (images / "second.png").write_bytes(make_photo_bytes(format="PNG", colour="white"))
    (images / "corrupt.jpg").write_bytes(make_photo_bytes(size=(300, 300))[:200])
    (images / "notes.jpg").write_text("not a photo")
    rows = [
        {"sku": "G1", "title": "Navy Check Shirt", "colour": "Navy Blue", "image": "images/good.jpg"},
        {
            "sku": "G2",
            "title": "White Tee",
            "price": "499.00",
            "currency": "INR",
            "images": ["images/second.png", "images/good.jpg"],
            "attributes": {"Fit": "Slim"},
        },
        {"sku": "B1", "title": "", "image": "images/good.jpg"},
        {"sku": "B2", "title": "No Photo"},
        {"sku": "B3", "title": "Missing Photo", "image": "images/absent.jpg"},
        {"sku": "B4", "title": "Corrupt Photo", "image": "images/corrupt.jpg"},
        {"sku": "B5", "title": "Text Photo", "image": "images/notes.jpg"},
        {"sku": "B6", "title": "Bad Price", "price": "cheap", "image": "images/good.jpg"},
        {"sku": "B7", "title": "Bad Attributes", "attributes": ["Fit"], "image": "images/good.jpg"},
        {"title": "No Sku", "image": "images/good.jpg"},
        {"sku": "B9", "title": "T" * 300, "image": "images/good.jpg"},
    ]
    path = tmp_path / "catalog.jsonl"
    lines = [json.dumps(row) for row in rows]
    lines.insert(3, "{not json")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_import_reports_each_bad_row_and_keeps_the_good(catalogue):
    report = catalog_import(path=catalogue)

    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    reasons = {rejection.line: rejection.reason for rejection in report.rejections}
    assert reasons == {
        3: "missing title",
        4: reasons[4],
        5: "missing photo (`image` column)",
        6: reasons[6],
        7: reasons[7],
        8: reasons[8],
        9: "`price` is not a number: 'cheap'",
        10: "`attributes` must be an object of name: value",
        11: "missing sku",
        12: reasons[12],
    }
    assert reasons[4].startswith("not valid JSON")
    assert reasons[6].startswith("photo: Photo file not found")
    assert reasons[7].startswith("photo: The photo file is damaged")
    assert reasons[8].startswith("photo: This file is not an image")
    assert reasons[12].startswith("title: Ensure this value has at most 255 characters")

    assert set(Product.objects.values_list("sku", flat=True)) == {"G1", "G2"}
    g2 = Product.objects.get(sku="G2")
    assert str(g2.price) == "499.00" and g2.attributes == {"Fit": "Slim"}
    assert [image.width for image in g2.images.all()] == [64, 64]


def test_reimport_updates_without_duplicates(catalogue):
    catalog_import(path=catalogue)
    again = catalog_import(path=catalogue)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert Product.objects.count() == 2 and ProductImage.objects.count() == 3

    rows = [json.loads(line) for line in catalogue.read_text().splitlines() if line.startswith('{"')]
    rows[0]["title"] = "Navy Slim Fit Check Shirt"
    catalogue.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    third = catalog_import(path=catalogue)
    assert third.updated == 1
    assert Product.objects.get(sku="G1").title == "Navy Slim Fit Check Shirt"
    assert Product.objects.count() == 2


def test_csv_catalogue(tmp_path):
    (tmp_path / "a.jpg").write_bytes(make_photo_bytes())
    path = tmp_path / "catalog.csv"
    path.write_text(
        'sku,title,colour,attributes,image\nC1,Blue Jeans,Blue,"{""Fit"": ""Slim""}",a.jpg\nC2,,Red,,a.jpg\n'
    )
    report = catalog_import(path=path)
    assert report.created == 1
    assert [(r.line, r.reason) for r in report.rejections] == [(3, "missing title")]
    assert Product.objects.get(sku="C1").attributes == {"Fit": "Slim"}


def test_command_exit_status_and_reject_report(catalogue, tmp_path):
    report_path = tmp_path / "rejects.jsonl"
    with pytest.raises(CommandError, match="10 rows were rejected"):
        call_command("import_catalog", str(catalogue), "--report", str(report_path), "--no-progress")
    rejected = [json.loads(line) for line in report_path.read_text().splitlines()]
    assert len(rejected) == 10 and rejected[0]["line"] == 3 and rejected[0]["row"]["sku"] == "B1"

    call_command("import_catalog", str(catalogue), "--allow-rejects", "--no-progress")
    assert Product.objects.count() == 2


def test_command_imports_one_split(tmp_path):
    shutil.copytree(SAMPLE.parent, tmp_path / "sample")
    skus = [json.loads(line)["sku"] for line in SAMPLE.read_text().splitlines()[:5]]
    split_file = tmp_path / "splits.json"
    split_file.write_text(json.dumps({"val": skus, "test": []}))
    call_command(
        "import_catalog",
        str(tmp_path / "sample" / "catalog.jsonl"),
        "--split-file",
        str(split_file),
        "--split",
        "val",
        "--no-progress",
    )
    assert sorted(Product.objects.values_list("sku", flat=True)) == sorted(skus)
    with pytest.raises(CommandError, match="split 'train' is not in"):
        call_command("import_catalog", str(SAMPLE), "--split-file", str(split_file), "--split", "train")


def test_sample_catalogue_imports_whole():
    report = catalog_import(path=SAMPLE)
    assert report.created == 240 and not report.rejections
