#!/usr/bin/env bash
# The host-project test (docs/integration.md): build the wheel offline, install it into a fresh
# virtualenv with the dependencies it declares, add it to a fresh `django-admin startproject shop` by
# the README's steps (read from README.md and docs/integration.md themselves, not copied here), and
# check that search answers under the shop's prefix and follows the shop's own product model.
#
# `make host-test` runs it (and .ci/run). It uses the project's PostgreSQL (the embedded server, or
# DATABASE_URL's) with a database of its own, host_shop_test$TEST_DB_SUFFIX, dropped at the end.
# HOST_TEST_KEEP=1 keeps the temporary folder.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PROJECT_PY="$ROOT/.venv/bin/python"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/host-shop.XXXXXX")"
DB_NAME="host_shop_test${TEST_DB_SUFFIX:-}"
started=$SECONDS

step() { echo "== [$((SECONDS - started))s] $*"; }
snippet() { "$PROJECT_PY" "$ROOT/packaging/doc_snippet.py" "$ROOT/$1" "$2"; }
# A documented shell block, run as written, in the current folder with the shop's virtualenv active.
run_snippet() { bash -euxo pipefail -c "$(snippet "$1" "$2")"; }
cleanup() {
  "$PROJECT_PY" "$ROOT/packaging/host_database.py" drop "$DB_NAME" || true
  if [ -n "${HOST_TEST_KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

step "building the wheel offline (no index, no build isolation)"
rm -rf "$ROOT/build"
"$PROJECT_PY" -m pip wheel --quiet --no-deps --no-build-isolation --no-index -w "$WORK/dist" "$ROOT"
rm -rf "$ROOT/build" "$ROOT"/*.egg-info
cp "$ROOT/constraints.txt" "$WORK/"
ls -l "$WORK/dist"

step "a fresh virtualenv: the wheel and the dependencies it declares (README: install)"
"$PYTHON" -m venv "$WORK/venv"
# shellcheck disable=SC1091
source "$WORK/venv/bin/activate"
cd "$WORK"
python -m pip install --quiet --upgrade pip
run_snippet README.md install
python - <<'PY'
import catalog, lifecycle, mlcore, search
from pathlib import Path
for package in (catalog, lifecycle, mlcore, search):
    assert "site-packages" in Path(package.__file__).parts, f"{package.__name__} not from the wheel: {package.__file__}"
assert (Path(mlcore.__file__).parent / "default_model" / "model.safetensors").is_file(), "no shipped model"
print("the apps, mlcore and the shipped model come from the installed wheel")
PY

step "django-admin startproject shop, and the README's settings and URLs"
django-admin startproject shop
cd shop
cp -r "$ROOT/packaging/host_shop/boutique" "$ROOT/packaging/host_shop/shop_search" \
  "$ROOT/packaging/host_shop/shop_catalog" "$ROOT/packaging/host_shop/check_search.py" .
snippet docs/integration.md feed > boutique/apps.py
snippet README.md settings >> shop/settings.py
cat >> shop/settings.py <<'PY'

# The shop's own apps (not plugin steps): its product model, and two apps labelled `search` and
# `catalog` as other packages (django-oscar) label theirs.
INSTALLED_APPS += ["boutique", "shop_search.apps.ShopSearchConfig", "shop_catalog.apps.ShopCatalogConfig"]
PY
snippet README.md urls >> shop/urls.py
eval "$("$PROJECT_PY" "$ROOT/packaging/host_database.py" create "$DB_NAME")"
python manage.py makemigrations boutique --verbosity 0
python manage.py check

step "the README's commands: migrate, the sample catalogue, the default model"
run_snippet README.md setup-commands

step "search answers, and follows the shop's own model"
export DJANGO_SETTINGS_MODULE=shop.settings
HOST_TEST_PHOTO="$ROOT/catalog/demo_catalog/images/10611.jpg" python check_search.py
run_snippet docs/integration.md resync
python check_search.py after-sync
step "host-project test passed"
