import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, OperationalError, connection

from catalog.importing import CatalogImportAborted, catalog_import
from catalog.models import Product, ProductImage
from catalog.validators import SKU_ALLOWED_CHARACTERS, validate_sku
from tests.conftest import make_photo_bytes, make_text_bomb_png

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE = Path(__file__).resolve().parents[2] / "catalog" / "sample_catalog" / "catalog.jsonl"
# The shared datasets beside the checkout (IndoFashion, Luma, Myntra), where this machine has them.
DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


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


def test_image_stays_the_primary_photo_when_images_lists_the_further_ones(tmp_path):
    for name, side in (("main.jpg", 80), ("back.jpg", 96), ("detail.jpg", 112)):
        (tmp_path / name).write_bytes(make_photo_bytes(size=(side, side)))
    rows = [
        # Further photos beside the main one (the Luma catalogue's shape).
        {"sku": "L1", "title": "Juno Jacket", "image": "main.jpg", "images": ["back.jpg", "detail.jpg"]},
        # Every photo, the main one among them.
        {"sku": "L2", "title": "Juno Jacket", "image": "main.jpg", "images": ["detail.jpg", "main.jpg"]},
        {"sku": "L3", "title": "Juno Jacket", "images": ["back.jpg", "main.jpg"]},
    ]
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    csv_path = tmp_path / "catalog.csv"
    csv_path.write_text("sku,title,image,images\nC1,Juno Jacket,main.jpg,back.jpg|detail.jpg\n")

    assert catalog_import(path=path).created == 3 and catalog_import(path=csv_path).created == 1

    def widths(sku):
        return [image.width for image in Product.objects.get(sku=sku).images.order_by("position")]

    assert widths("L1") == [80, 96, 112]
    assert widths("L2") == [80, 112]
    assert widths("L3") == [96, 80]
    assert widths("C1") == [80, 96, 112]


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


def _write_jsonl(path: Path, rows: list) -> Path:
    """Rows as JSON lines; a bytes item is written as it is (a line that is not UTF-8)."""
    lines = [row if isinstance(row, bytes) else json.dumps(row).encode() for row in rows]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture
def photo_folder(tmp_path):
    (tmp_path / "good.jpg").write_bytes(make_photo_bytes())
    (tmp_path / "crafted.png").write_bytes(make_text_bomb_png())
    return tmp_path


def test_a_nul_character_anywhere_is_a_rejected_row_and_the_import_goes_on(photo_folder):
    path = _write_jsonl(
        photo_folder / "catalog.jsonl",
        [
            {"sku": "OK1", "title": "Navy Shirt", "image": "good.jpg"},
            {"sku": "N1", "title": "Navy\x00Shirt", "image": "good.jpg"},
            {"sku": "N2", "title": "Shirt", "description": "soft\x00", "image": "good.jpg"},
            {"sku": "N\x003", "title": "Shirt", "image": "good.jpg"},
            {"sku": "N4", "title": "Shirt", "attributes": {"Fi\x00t": "Slim"}, "image": "good.jpg"},
            {"sku": "N5", "title": "Shirt", "attributes": {"Fit": "Sl\x00im"}, "image": "good.jpg"},
            {"sku": "N6", "title": "Shirt", "image": "go\x00od.jpg"},
            {"sku": "N7", "title": "Shirt", "attributes": '{"Fit": "Sl\\u0000im"}', "image": "good.jpg"},
            {"sku": "N8", "title": "Shirt \ud800", "image": "good.jpg"},
            {"sku": "OK2", "title": "White Tee", "image": "good.jpg"},
        ],
    )

    report = catalog_import(path=path)

    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    reasons = {rejection.line: (rejection.sku, rejection.reason) for rejection in report.rejections}
    nul = "contains a NUL character (\\x00), which the database cannot store; remove it"
    assert reasons == {
        2: ("N1", f"`title` {nul}"),
        3: ("N2", f"`description` {nul}"),
        4: ("N\\x003", f"`sku` {nul}"),
        5: ("N4", f"attribute name 'Fi\\x00t' {nul}"),
        6: ("N5", f"attribute 'Fit' {nul}"),
        7: ("N6", f"photo path {nul}"),
        8: ("N7", f"attribute 'Fit' {nul}"),
        9: (
            "N8",
            "`title` contains an unpaired surrogate (\\ud800), which is not valid Unicode; fix the text",
        ),
    }
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["OK1", "OK2"]


def test_a_jsonl_line_that_is_not_utf8_is_rejected_with_its_number_and_the_rest_imports(photo_folder):
    bad = b'{"sku": "U1", "title": "Caf\xe9 Shirt", "image": "good.jpg"}'
    path = _write_jsonl(
        photo_folder / "catalog.jsonl",
        [
            {"sku": "OK1", "title": "Navy Shirt", "image": "good.jpg"},
            bad,
            b"\xff\xfe not even json",
            {"sku": "OK2", "title": "Caf\u00e9 Shirt", "image": "good.jpg"},
        ],
    )

    report = catalog_import(path=path)

    assert report.created == 2
    assert [(r.line, r.sku, r.reason) for r in report.rejections] == [
        (2, "U1", "not valid UTF-8 (byte 0xe9 at byte 28 of the line); save the file as UTF-8"),
        (3, None, "not valid UTF-8 (byte 0xff at byte 1 of the line); save the file as UTF-8"),
    ]
    assert Product.objects.get(sku="OK2").title == "Caf\u00e9 Shirt"


def test_a_csv_row_that_is_not_utf8_is_rejected_and_the_rows_after_it_import(photo_folder):
    path = photo_folder / "catalog.csv"
    path.write_bytes(
        b"\xef\xbb\xbfsku,title,description,image\r\n"  # a spreadsheet's BOM before the header
        b"C1,Navy Shirt,plain,good.jpg\r\n"
        b'C2,Caf\xe9 Shirt,"two\r\nlines",good.jpg\r\n'
        b'C3,Tee,"first line\r\nsecond \xff line",good.jpg\r\n'
        b"C4,Red\x00Tee,,good.jpg\r\n"
        b'C5,White Tee,"a\r\nb",good.jpg\r\n'
    )

    report = catalog_import(path=path)

    assert sorted(Product.objects.values_list("sku", flat=True)) == ["C1", "C5"]
    assert Product.objects.get(sku="C5").description == "a\r\nb"
    assert [(r.line, r.sku, r.reason.split(";")[0]) for r in report.rejections] == [
        (3, "C2", "not valid UTF-8 (byte 0xe9 at byte 7 of the line)"),
        (6, "C3", "not valid UTF-8 (byte 0xff at byte 8 of the line)"),
        (7, "C4", "`title` contains a NUL character (\\x00), which the database cannot store"),
    ]


@pytest.mark.parametrize("allow_rejects", [False, True])
def test_the_command_imports_past_bad_lines_with_or_without_allow_rejects(photo_folder, allow_rejects):
    path = _write_jsonl(
        photo_folder / "catalog.jsonl",
        [
            b'{"sku": "U1", "title": "Caf\xe9", "image": "good.jpg"}',
            {"sku": "N1", "title": "Navy\x00Shirt", "image": "good.jpg"},
            {"sku": "OK1", "title": "Navy Shirt", "image": "good.jpg"},
        ],
    )
    arguments = [str(path), "--no-progress", *(["--allow-rejects"] if allow_rejects else [])]
    out = io.StringIO()

    if allow_rejects:
        call_command("import_catalog", *arguments, stdout=out)
    else:
        # Without --allow-rejects the exit status says rows were rejected, after importing the rest.
        with pytest.raises(CommandError, match="2 rows were rejected"):
            call_command("import_catalog", *arguments, stdout=out)

    assert list(Product.objects.values_list("sku", flat=True)) == ["OK1"]
    assert "line 1 (sku U1): not valid UTF-8" in out.getvalue()
    assert "line 2 (sku N1): `title` contains a NUL character" in out.getvalue()


@pytest.mark.parametrize(
    "sku, shown",
    [
        ("A/B", "'/'"),
        ("A?B", "'?'"),
        ("A#B", "'#'"),
        ("50%", "'%'"),
        ("A\\B", "'\\\\'"),
        ("A B", "' '"),
        ("A\tB", "'\\t'"),
        ("A\x7fB", "'\\x7f'"),
        ("Caf\u00e9", "'\u00e9'"),
    ],
)
def test_a_sku_a_url_cannot_carry_is_rejected_saying_what_is_allowed(photo_folder, sku, shown):
    path = _write_jsonl(photo_folder / "catalog.jsonl", [{"sku": sku, "title": "Shirt", "image": "good.jpg"}])

    report = catalog_import(path=path)

    assert report.created == 0 and not Product.objects.exists()
    [rejection] = report.rejections
    assert rejection.reason == (
        f"sku: A SKU may contain only {SKU_ALLOWED_CHARACTERS} (it goes into product URLs as it is); "
        f"this one has {shown}."
    )


def test_a_sku_longer_than_the_field_or_made_of_dots_is_rejected(photo_folder):
    path = _write_jsonl(
        photo_folder / "catalog.jsonl",
        [
            {"sku": "S" * 65, "title": "Shirt", "image": "good.jpg"},
            {"sku": "..", "title": "Shirt", "image": "good.jpg"},
            {"sku": "S" * 64, "title": "Shirt", "image": "good.jpg"},
        ],
    )
    report = catalog_import(path=path)
    assert [r.reason for r in report.rejections] == [
        "sku: Ensure this value has at most 64 characters (it has 65).",
        "sku: A SKU cannot be made of dots only.",
    ]
    assert list(Product.objects.values_list("sku", flat=True)) == ["S" * 64]


def test_the_sku_formats_of_the_known_catalogues_stay_valid(photo_folder):
    # IndoFashion "IF-t801", Luma "MJ01-XS-Blue" style, Myntra numeric ids, and what a shop may use.
    skus = ["IF-t801", "MJ01-XS-Blue", "10000", "ab_12.v2", "TEE+CAP", "A:1@shop", "x(1)~"]
    path = _write_jsonl(
        photo_folder / "catalog.jsonl", [{"sku": sku, "title": "Shirt", "image": "good.jpg"} for sku in skus]
    )
    report = catalog_import(path=path)
    assert not report.rejections and report.created == len(skus)
    for catalogue in sorted(DATASETS.glob("*/catalog.jsonl")):
        with catalogue.open(encoding="utf-8") as handle:
            for line in handle:
                validate_sku(json.loads(line)["sku"])  # raises on the first sku that no longer passes


def test_a_photo_pillow_refuses_is_a_rejected_row(photo_folder):
    path = _write_jsonl(
        photo_folder / "catalog.jsonl",
        [
            {"sku": "P1", "title": "Crafted", "image": "crafted.png"},
            {"sku": "P2", "title": "Navy Shirt", "image": "good.jpg"},
        ],
    )
    report = catalog_import(path=path)
    assert [(r.sku, r.reason.split(" (")[0]) for r in report.rejections] == [
        ("P1", "photo: The photo file is damaged and cannot be decoded")
    ]
    assert "Decompressed data too large" in report.rejections[0].reason
    assert list(Product.objects.values_list("sku", flat=True)) == ["P2"]


def test_an_unexpected_error_in_one_row_is_a_rejection(photo_folder, monkeypatch):
    from catalog import importing

    upsert_many = importing.product_upsert_many

    def upsert_failing_on_p1(*, items):
        # Fails any write that holds P1: the whole batch first, then P1 alone when retried row by row.
        if any(item.sku == "P1" for item in items):
            raise RuntimeError("something no one foresaw")
        return upsert_many(items=items)

    monkeypatch.setattr(importing, "product_upsert_many", upsert_failing_on_p1)
    path = _write_jsonl(
        photo_folder / "catalog.jsonl",
        [
            {"sku": "P1", "title": "Navy Shirt", "image": "good.jpg"},
            {"sku": "P2", "title": "White Tee", "image": "good.jpg"},
        ],
    )
    report = catalog_import(path=path)
    assert [(r.line, r.reason) for r in report.rejections] == [
        (1, "unexpected error (RuntimeError: something no one foresaw); the row was skipped")
    ]
    assert list(Product.objects.values_list("sku", flat=True)) == ["P2"]


@pytest.fixture
def reconnect_afterwards():
    yield
    connection.close()  # the test killed the connection; the next use opens a new one


def test_the_database_going_away_stops_the_import_with_one_line(photo_folder, reconnect_afterwards):
    path = _write_jsonl(
        photo_folder / "catalog.jsonl",
        [{"sku": f"P{n}", "title": "Navy Shirt", "image": "good.jpg"} for n in range(1, 5)],
    )
    rows_seen = []

    def kill_the_connection_before_row_3():
        rows_seen.append(1)
        if len(rows_seen) == 3:
            # A real outage for this process: the server ends our session (as a restart would).
            with pytest.raises(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(CatalogImportAborted) as aborted:
        # One row a batch. A batch is written once the next one is read and started: row 1 is
        # committed before row 3 is read, row 2 is not.
        catalog_import(path=path, on_row=kill_the_connection_before_row_3, batch_size=1)

    message = str(aborted.value)
    assert message.startswith("The database stopped answering at line 2 (")
    assert message.endswith("start the database (`make db`) and import again (re-importing is safe).")
    assert "\n" not in message and aborted.value.report.created == 1 and len(rows_seen) == 3
    connection.close()
    assert list(Product.objects.values_list("sku", flat=True)) == ["P1"]


def test_the_command_reports_a_database_outage_as_its_error(photo_folder, reconnect_afterwards, monkeypatch):
    from catalog import importing

    def outage(*, items):
        raise OperationalError("connection to server on socket failed: No such file or directory")

    monkeypatch.setattr(importing, "product_upsert_many", outage)
    path = _write_jsonl(
        photo_folder / "catalog.jsonl", [{"sku": "P1", "title": "Shirt", "image": "good.jpg"}]
    )
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^The database stopped answering at line 1 \(OperationalError: "):
        call_command("import_catalog", str(path), "--no-progress", "--allow-rejects", stdout=out)
    assert "Imported 0 products" in out.getvalue()


def test_command_sample_names_the_shipped_catalogue_and_refuses_a_path_beside_it(tmp_path):
    from catalog.management.commands.import_catalog import SAMPLE_CATALOG

    assert SAMPLE_CATALOG == SAMPLE and SAMPLE_CATALOG.is_file()
    with pytest.raises(CommandError, match="not both"):
        call_command("import_catalog", str(SAMPLE), "--sample", "--no-progress")
    with pytest.raises(CommandError, match="--sample"):
        call_command("import_catalog", "--no-progress")
