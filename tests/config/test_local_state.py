from __future__ import annotations

from config import local_state


def test_secret_key_is_created_once_and_then_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    assert local_state.secret_key_read() is None

    local_state.secret_key_ensure()
    first = local_state.secret_key_read()
    local_state.secret_key_ensure()

    assert first is not None and len(first) >= 50
    assert local_state.secret_key_read() == first


def test_no_key_file_when_secret_key_is_set(monkeypatch, tmp_path):
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")

    local_state.secret_key_ensure()

    assert not (tmp_path / "var").exists()
