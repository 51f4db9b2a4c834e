"""Settings: read once from DROPIN_* variables; a wrong value names the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from dropin.config import Settings, SettingsError

SECRET = "k" * 40


def test_defaults_in_dev_generate_and_keep_a_secret(tmp_path: Path) -> None:
    env = {"DROPIN_DATA_DIR": str(tmp_path)}
    first = Settings.from_env(env, dev=True)
    assert first.database_url == "sqlite+aiosqlite:///./dropin.db"
    assert first.public_url == "http://127.0.0.1:8000"
    assert first.redis_url is None and first.smtp_url is None
    assert len(first.secret_key) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert Settings.from_env(env, dev=True).secret_key == first.secret_key


def test_production_values() -> None:
    env = {
        "DROPIN_SECRET_KEY": SECRET,
        "DROPIN_DATABASE_URL": "postgresql+asyncpg://u:p@db/dropin",
        "DROPIN_REDIS_URL": "redis://redis:6379/0",
        "DROPIN_SMTP_URL": "smtp+starttls://u:p@smtp.example.org:587",
        "DROPIN_PUBLIC_URL": "https://dropin.example.org/",
        "DROPIN_HORIZON_DAYS": "365",
    }
    s = Settings.from_env(env)
    assert s.public_url == "https://dropin.example.org"
    assert s.horizon_days == 365 and not s.is_sqlite
    assert SECRET not in repr(s)


def test_room_settings() -> None:
    env = {
        "DROPIN_SECRET_KEY": SECRET,
        "DROPIN_STUN_URLS": "stun:stun.example.org:3478, stun:[::1]:3478",
        "DROPIN_TURN_URLS": "turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349",
        "DROPIN_TURN_SECRET": "turn-shared-secret",
        "DROPIN_MEDIA_ADDRESSES": "203.0.113.7, 2001:db8::7",
        "DROPIN_RECONNECT_GRACE": "45",
        "DROPIN_FACILITATOR_TIMEOUT": "120",
    }
    s = Settings.from_env(env)
    assert s.stun_urls == ("stun:stun.example.org:3478", "stun:[::1]:3478")
    assert s.turn_urls[1] == "turns:turn.example.org:5349"
    assert s.media_addresses == ("203.0.113.7", "2001:db8::7")
    assert (s.reconnect_grace, s.facilitator_timeout, s.turn_ttl) == (45, 120, 6 * 3600)
    assert "turn-shared-secret" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DROPIN_SECRET_KEY", None),
        ("DROPIN_SECRET_KEY", "short"),
        ("DROPIN_DATABASE_URL", "mysql://x/y"),
        ("DROPIN_DATABASE_URL", "dropin.db"),
        ("DROPIN_REDIS_URL", "http://localhost"),
        ("DROPIN_PUBLIC_URL", "ftp://x"),
        ("DROPIN_PUBLIC_URL", "http://x/?a=1"),
        ("DROPIN_SMTP_URL", "smtp://"),
        ("DROPIN_SMTP_URL", "smtp://host:port"),
        ("DROPIN_MAIL_FROM", "nobody"),
        ("DROPIN_HORIZON_DAYS", "lots"),
        ("DROPIN_HORIZON_DAYS", "1"),
        ("DROPIN_DEFAULT_TIMEZONE", "Mars/Base"),
        ("DROPIN_LOG_LEVEL", "LOUD"),
        ("DROPIN_STUN_URLS", "http://stun.example.org"),
        ("DROPIN_TURN_URLS", "stun:turn.example.org"),
        ("DROPIN_TURN_TTL", "60"),
        ("DROPIN_MEDIA_ADDRESSES", "localhost"),
        ("DROPIN_RECONNECT_GRACE", "0"),
        ("DROPIN_FACILITATOR_TIMEOUT", "forever"),
    ],
)
def test_wrong_values_name_the_variable(name: str, value: str | None) -> None:
    env = {"DROPIN_SECRET_KEY": SECRET}
    if value is None:
        env.pop(name)
    else:
        env[name] = value
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)
