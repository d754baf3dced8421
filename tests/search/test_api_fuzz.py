"""schemathesis against the served OpenAPI schema: every operation, bounded examples, all checks.

No example may answer 5xx or anything the schema does not document (status, headers, body), and what
the schema calls valid must be accepted, with two exceptions: a schema cannot say "bytes that decode
as a photo", so the photo upload is checked with every check but the acceptance of schema-valid data
(random bytes are rightly refused with 415), and likewise events (a random search id is a 400).
The real CLI against a live server on the test database.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = 30
PHOTO_PATH = "^/api/v1/search/image/$"
# An event must name a search the API answered and a product it showed, which a schema cannot say
# either: a schema-valid random search id is rightly a 400.
EVENTS_PATH = "^/api/v1/events/$"
RUNS = {
    "json-operations": ["--exclude-path-regex", f"{PHOTO_PATH}|{EVENTS_PATH}"],
    "photo-upload": ["--include-path-regex", PHOTO_PATH, "--exclude-checks", "positive_data_acceptance"],
    "events": ["--include-path-regex", EVENTS_PATH, "--exclude-checks", "positive_data_acceptance"],
}


def _schemathesis() -> str:
    beside_python = Path(sys.executable).parent / "schemathesis"
    return str(beside_python) if beside_python.exists() else shutil.which("schemathesis") or "schemathesis"


@pytest.mark.parametrize("selection", list(RUNS))
def test_every_operation_answers_as_documented(small_catalog, live_server, tmp_path, selection):
    command = [_schemathesis(), "run", f"{live_server.url}/api/v1/schema/", "--checks", "all"]
    command += ["--max-examples", str(MAX_EXAMPLES), "--generation-deterministic", "--workers", "1"]
    command += ["--request-timeout", "30", *RUNS[selection]]

    # In tmp_path: schemathesis keeps a cache of failing cases in its working folder.
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "generated" in result.stdout  # it ran cases, not an empty selection
