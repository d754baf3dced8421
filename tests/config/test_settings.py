from __future__ import annotations

import json

import pytest

from config import settings as project_settings
from tests.config.conftest import run_python

# Records, in the child process, every attempt to start a process or to write to the file system.
AUDIT_AND_IMPORT = """
import json, os, sys
events = []
SPAWNS = {"subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn"}
WRITES = {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.symlink", "shutil.copyfile"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def audit(event, args):
    if event in SPAWNS or event in WRITES:
        events.append([event, repr(args)[:200]])
    elif event == "open" and isinstance(args[0], (str, bytes)) and (args[2] or 0) & WRITE_FLAGS:
        events.append([event, repr(args)[:200]])

sys.addaudithook(audit)
import config.settings
print(json.dumps({"events": events, "databases": config.settings.DATABASES}))
"""


def test_importing_settings_starts_no_process_and_writes_nothing(isolated_env, tmp_path):
    # Given a fresh checkout: no embedded cluster, no var/ folder, no DATABASE_URL
    # When a fresh process imports the settings
    result = run_python(["-c", AUDIT_AND_IMPORT], env=isolated_env)

    # Then it started nothing and wrote nothing, and still knows where the server will be
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["events"] == []
    assert list((tmp_path / "pg").iterdir()) == []
    assert not (tmp_path / "var").exists()
    database = report["databases"]["default"]
    assert database["ENGINE"] == "config.embedded_postgres_backend"
    assert database["HOST"] == str(tmp_path / "pg")


def test_embedded_server_settings_when_database_url_is_unset(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("EMBEDDED_PG_DIR", str(tmp_path))

    database = project_settings._database()

    assert database["ENGINE"] == "config.embedded_postgres_backend"
    assert (database["NAME"], database["USER"], database["HOST"], database["PORT"]) == (
        "product_search",
        "postgres",
        str(tmp_path),
        "5432",
    )


def test_socket_folder_in_database_url_becomes_the_host(monkeypatch):
    # psql (dbshell) reads HOST only, never OPTIONS
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@/shop?host=/run/pg-sockets")

    database = project_settings._database()

    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert database["HOST"] == "/run/pg-sockets"
    assert "host" not in database["OPTIONS"]


def test_database_url_with_a_host_is_taken_as_it_is(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://shop:secret@db.internal:5433/shop")

    database = project_settings._database()

    assert (database["HOST"], database["PORT"], database["USER"], database["NAME"]) == (
        "db.internal",
        5433,
        "shop",
        "shop",
    )
    assert database["CONN_MAX_AGE"] == 60


@pytest.mark.parametrize("debug", ["1", "0"])
def test_secret_key_from_the_environment_wins(isolated_env, debug):
    env = {**isolated_env, "SECRET_KEY": "from-the-environment", "DEBUG": debug}

    result = run_python(["-c", "import config.settings as s; print(s.SECRET_KEY)"], env=env)

    assert result.stdout.strip() == "from-the-environment"


def test_debug_is_off_unless_asked_for(isolated_env):
    env = {name: value for name, value in isolated_env.items() if name != "DEBUG"}
    env["SECRET_KEY"] = "k" * 50
    script = ["-c", "import config.settings as s; print(s.DEBUG)"]

    assert run_python(script, env=env).stdout.strip() == "False"
    assert run_python(script, env={**env, "DEBUG": "1"}).stdout.strip() == "True"


# The production settings docs/deployment.md lists.
PRODUCTION_ENVIRONMENT = {
    "DEBUG": "0",
    "SECRET_KEY": "a-long-random-production-key-3b9f1c7e-5d2a-4e8b-9c6f-1a2b3c4d5e6f-7081",
    "ALLOWED_HOSTS": "shop.example.com",
    "HTTPS_ONLY": "1",
    "TRUSTED_PROXY_COUNT": "1",
    "SERVE_MEDIA": "0",
}
DEPLOY_CHECK = (
    "import django; django.setup(); from django.core.management import call_command; "
    "call_command('check', deploy=True, fail_level='WARNING')"
)


def test_deploy_check_is_clean_under_the_documented_production_settings(isolated_env):
    result = run_python(["-c", DEPLOY_CHECK], env={**isolated_env, **PRODUCTION_ENVIRONMENT})

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_names_what_the_demo_settings_leave_open(isolated_env):
    demo = {**isolated_env, "DEBUG": "0", "SECRET_KEY": PRODUCTION_ENVIRONMENT["SECRET_KEY"]}

    result = run_python(["-c", DEPLOY_CHECK], env=demo)

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


def test_debug_off_without_any_secret_key_fails_loudly(isolated_env):
    result = run_python(["-c", "import config.settings"], env={**isolated_env, "DEBUG": "0"})

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("debug", ["1", "0"])
def test_the_checkout_key_is_used_once_manage_py_created_it(isolated_env, tmp_path, debug):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret_key").write_text("the-checkout-key\n")

    result = run_python(
        ["-c", "import config.settings as s; print(s.SECRET_KEY)"], env={**isolated_env, "DEBUG": debug}
    )

    assert result.stdout.strip() == "the-checkout-key"


DATABASES_AND_ROUTERS = (
    "import json, config.settings as s; print(json.dumps({'databases': s.DATABASES, "
    "'routers': getattr(s, 'DATABASE_ROUTERS', None), "
    "'max_lag': getattr(s, 'PRODUCT_SEARCH_REPLICA_MAX_LAG_SECONDS', None)}))"
)


def test_without_a_replica_url_there_is_one_database_and_no_router(isolated_env):
    result = run_python(["-c", DATABASES_AND_ROUTERS], env=isolated_env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report["databases"]) == ["default"]
    assert report["routers"] is None and report["max_lag"] is None


def test_a_replica_url_adds_the_replica_and_the_search_router(isolated_env):
    env = {
        **isolated_env,
        "DATABASE_REPLICA_URL": "postgresql://search@/shop?host=/run/replica&port=5433",
        "REPLICA_MAX_LAG_SECONDS": "2.5",
    }

    result = run_python(["-c", DATABASES_AND_ROUTERS], env=env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    replica = report["databases"]["replica"]
    assert (replica["ENGINE"], replica["NAME"], replica["HOST"], replica["PORT"]) == (
        "django.db.backends.postgresql",
        "shop",
        "/run/replica",
        5433,
    )
    # It must be passed over quickly when down, and the test runner must not try to create a database on it
    assert replica["OPTIONS"] == {"connect_timeout": 2}
    assert replica["TEST"] == {"MIRROR": "default"}
    assert report["databases"]["default"]["ENGINE"] == "config.embedded_postgres_backend"
    assert report["routers"] == ["search.read_replica.SearchReadRouter"]
    assert report["max_lag"] == 2.5

    deploy = run_python(
        ["-c", DEPLOY_CHECK],
        env={**env, **PRODUCTION_ENVIRONMENT, "DATABASE_URL": "postgres://search@db.internal/search"},
    )
    assert deploy.returncode == 0, deploy.stderr
