"""Settings: the only place that reads the environment.

``Settings.from_env()`` reads ``DROPIN_*`` variables once at start; a wrong value raises
:class:`SettingsError` naming the variable, so a misconfigured server never starts.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from dropin.domain.recurrence import RecurrenceError, zone

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./dropin.db"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
_DB_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
_MIN_SECRET_LEN = 32


class SettingsError(ValueError):
    """A ``DROPIN_*`` variable is missing or wrong; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable, read once. See README "Configuration" for each variable."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    secret_key: str = field(default="", repr=False)
    public_url: str = DEFAULT_PUBLIC_URL
    smtp_url: str | None = None
    mail_from: str = "dropin <dropin@localhost>"
    data_dir: Path = Path(".dropin")
    outbox_dir: Path = Path("outbox")
    horizon_days: int = 180
    default_timezone: str = "Europe/London"
    # A row a worker took but never finished (it died) is taken again after this long.
    outbox_claim_timeout: int = 300
    retention_days: int = 180
    dev: bool = False
    log_level: str = "INFO"
    # Rooms (see docs/signaling.md). STUN/TURN URLs go to browsers in ``welcome.ice_servers``;
    # with a TURN secret, TURN entries carry time-limited "REST API for TURN" credentials.
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = field(default=None, repr=False)
    turn_ttl: int = 6 * 3600
    # IP addresses the media relay offers as its ICE host candidates (empty: every interface
    # but loopback, aiortc's default). Set to the public interface, or 127.0.0.1 in tests.
    media_addresses: tuple[str, ...] = ()
    reconnect_grace: int = 30
    facilitator_timeout: int = 300

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        dev: bool = False,
        reuse_dev_secret: bool = False,
        default_public_url: str = DEFAULT_PUBLIC_URL,
    ) -> Settings:
        """Build settings from ``env`` (default ``os.environ``).

        In dev mode a missing ``DROPIN_SECRET_KEY`` is generated once and kept in
        ``<data_dir>/secret_key`` so links stay valid across restarts. ``reuse_dev_secret``
        (the organizer CLI) uses that kept key if there is one, but never makes one.
        """
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(f"DROPIN_{name}")
            return value.strip() if value is not None and value.strip() else None

        data_dir = Path(get("DATA_DIR") or ".dropin")
        settings = cls(
            database_url=_database_url(get("DATABASE_URL") or DEFAULT_DATABASE_URL),
            redis_url=_redis_url(get("REDIS_URL")),
            public_url=_public_url(get("PUBLIC_URL") or default_public_url),
            smtp_url=_smtp_url(get("SMTP_URL")),
            mail_from=_mail_from(get("MAIL_FROM") or cls.mail_from),
            data_dir=data_dir,
            outbox_dir=Path(get("OUTBOX_DIR") or "outbox"),
            horizon_days=_int("HORIZON_DAYS", get("HORIZON_DAYS"), 180, 7, 3660),
            default_timezone=_timezone(get("DEFAULT_TIMEZONE") or cls.default_timezone),
            outbox_claim_timeout=_int(
                "OUTBOX_CLAIM_TIMEOUT", get("OUTBOX_CLAIM_TIMEOUT"), 300, 1, 86400
            ),
            retention_days=_int("RETENTION_DAYS", get("RETENTION_DAYS"), 180, 1, 3650),
            dev=dev,
            log_level=_log_level(get("LOG_LEVEL") or "INFO"),
            stun_urls=_ice_urls("STUN_URLS", get("STUN_URLS"), ("stun:",)),
            turn_urls=_ice_urls("TURN_URLS", get("TURN_URLS"), ("turn:", "turns:")),
            turn_secret=get("TURN_SECRET"),
            turn_ttl=_int("TURN_TTL", get("TURN_TTL"), 6 * 3600, 600, 7 * 86400),
            media_addresses=_addresses(get("MEDIA_ADDRESSES")),
            reconnect_grace=_int("RECONNECT_GRACE", get("RECONNECT_GRACE"), 30, 1, 600),
            facilitator_timeout=_int(
                "FACILITATOR_TIMEOUT", get("FACILITATOR_TIMEOUT"), 300, 1, 3600
            ),
        )
        secret = get("SECRET_KEY")
        kept = data_dir / "secret_key"
        if secret is None and reuse_dev_secret and kept.exists():
            secret = kept.read_text().strip()
        if secret is None:
            if not dev:
                raise SettingsError(
                    "DROPIN_SECRET_KEY is required outside dev mode "
                    "(at least 32 characters; e.g. `python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))'`)"
                )
            secret = _dev_secret(data_dir)
        if len(secret) < _MIN_SECRET_LEN:
            raise SettingsError(f"DROPIN_SECRET_KEY must be at least {_MIN_SECRET_LEN} characters")
        return replace(settings, secret_key=secret)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _database_url(value: str) -> str:
    scheme = value.split("://", 1)[0]
    if "://" not in value or scheme not in _DB_SCHEMES:
        raise SettingsError(
            "DROPIN_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    return value


def _redis_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise SettingsError("DROPIN_REDIS_URL must be a redis://host:port/db URL")
    return value


def _public_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise SettingsError("DROPIN_PUBLIC_URL must be an http(s):// URL without a query")
    return value.rstrip("/")


def _smtp_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
        raise SettingsError(
            "DROPIN_SMTP_URL must be smtp://, smtp+starttls:// or smtps://[user:pass@]host[:port]"
        )
    try:
        parts.port  # noqa: B018 - raises on a non-numeric port
    except ValueError as exc:
        raise SettingsError("DROPIN_SMTP_URL has an invalid port") from exc
    return value


def _mail_from(value: str) -> str:
    if "@" not in value or "\n" in value or "\r" in value:
        raise SettingsError("DROPIN_MAIL_FROM must be an email address, e.g. 'dropin <a@b.org>'")
    return value


def _timezone(value: str) -> str:
    try:
        zone(value)
    except RecurrenceError as exc:
        raise SettingsError(f"DROPIN_DEFAULT_TIMEZONE: {exc}") from exc
    return value


def _log_level(value: str) -> str:
    upper = value.upper()
    if upper not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError("DROPIN_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    return upper


def _ice_urls(name: str, value: str | None, schemes: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return ()
    urls = tuple(u.strip() for u in value.split(",") if u.strip())
    for url in urls:
        if not url.startswith(schemes) or any(c.isspace() for c in url):
            raise SettingsError(
                f"DROPIN_{name} must be a comma-separated list of {' or '.join(schemes)} URLs"
            )
    return urls


def _addresses(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    found = []
    for part in value.split(","):
        try:
            found.append(str(ipaddress.ip_address(part.strip())))
        except ValueError:
            raise SettingsError(
                "DROPIN_MEDIA_ADDRESSES must be a comma-separated list of IP addresses"
            ) from None
    return tuple(found)


def _int(name: str, value: str | None, default: int, lo: int, hi: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"DROPIN_{name} must be a whole number") from None
    if not lo <= number <= hi:
        raise SettingsError(f"DROPIN_{name} must be between {lo} and {hi}")
    return number


def _dev_secret(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Written with owner-only permissions: it signs every link.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret
