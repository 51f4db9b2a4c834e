"""workers/mail.py without a server: the dev outbox folder, backoff, scrubbing addresses."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.workers.mailkit import ICS, message, parse, structure
from workers.mail import (
    MailError,
    OutboxFolderMailer,
    backoff,
)

# --------------------------------------------------------------------------- folder mailer


def listing(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


NAME_RE = re.compile(r"^\d{8}T\d{6}Z-[A-Za-z0-9._-]+\.eml$")


async def test_folder_mailer_writes_eml_files(tmp_path: Path) -> None:
    m = OutboxFolderMailer(tmp_path / "outbox")
    await m.send(message(1))
    await m.send(message(2))
    files = listing(tmp_path / "outbox")
    assert [f.name for f in files if not NAME_RE.match(f.name)] == []
    assert len(files) == 2
    assert files[0].name.startswith("20261124T100000Z-booking-1.invite-dropin.test-")
    written = parse(files[0].read_bytes())
    assert written["Message-ID"] == "<booking-1.invite@dropin.test>"
    assert structure(written) == structure(message(1))
    assert list(written.walk())[4].get_payload(decode=True) == ICS
    assert os.stat(files[0]).st_mode & 0o077 == 0  # addresses inside: owner only


async def test_folder_mailer_same_message_id_is_one_file(tmp_path: Path) -> None:
    m = OutboxFolderMailer(tmp_path)
    first = message(1)
    await m.send(first)
    again = message(1, date=dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC))
    again.replace_header("Subject", "resent")
    await asyncio.gather(m.send(again), m.send(again))
    [only] = listing(tmp_path)
    assert parse(only.read_bytes())["Subject"] == "resent"
    assert only.name.startswith("20261124T100000Z-")  # the first name is kept


async def test_folder_mailer_without_date_or_message_id(tmp_path: Path) -> None:
    m = OutboxFolderMailer(tmp_path, clock=lambda: dt.datetime(2027, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    msg = message(1)
    del msg["Date"], msg["Message-ID"]
    await m.send(msg)
    await m.send(msg)
    [only] = listing(tmp_path)
    assert only.name.startswith("20270102T030405Z-no-message-id-")


async def test_folder_mailer_renames_a_complete_temp_file_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bool, bytes]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        seen.append((Path(src).name, Path(dst).exists(), Path(src).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr("workers.mail.os.replace", spy)
    m = OutboxFolderMailer(tmp_path)
    await m.send(message(1))
    [(temp_name, target_existed, data)] = seen
    assert temp_name.startswith(".") and not temp_name.endswith(".eml")
    assert not target_existed
    [final] = listing(tmp_path)
    assert final.read_bytes() == data
    assert parse(data)["Message-ID"] == "<booking-1.invite@dropin.test>"


async def test_folder_mailer_failed_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("workers.mail.os.fsync", broken)
    m = OutboxFolderMailer(tmp_path)
    with pytest.raises(MailError) as info:
        await m.send(message(1))
    assert info.value.transient
    assert info.value.reason == "outbox folder: No space left on device"
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------- backoff


def fixed(value: float) -> Callable[[], float]:
    return lambda: value


@pytest.mark.parametrize(
    ("attempt", "draw", "kw", "expected"),
    [
        (1, 1.0, {}, 2.0),
        (1, 0.5, {}, 1.0),
        (1, 0.0, {}, 0.0),
        (2, 1.0, {}, 4.0),
        (3, 0.25, {}, 2.0),
        (11, 1.0, {}, 2048.0),
        (12, 1.0, {}, 3600.0),  # 4096 capped
        (12, 0.5, {}, 1800.0),
        (10_000, 0.5, {}, 1800.0),  # no overflow
        (4, 1.0, {"base": 0.5}, 4.0),
        (5, 1.0, {"base": 1.0, "cap": 10.0}, 10.0),
        (3, 1.0, {"cap": 0.0}, 0.0),
    ],
)
def test_backoff_table(attempt: int, draw: float, kw: dict[str, float], expected: float) -> None:
    assert backoff(attempt, rand=fixed(draw), **kw) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("attempt", "draw", "kw"),
    [(0, 0.5, {}), (-1, 0.5, {}), (1, 1.5, {}), (1, -0.1, {}), (1, 0.5, {"base": 0.0})],
)
def test_backoff_rejects(attempt: int, draw: float, kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        backoff(attempt, rand=fixed(draw), **kw)


def test_scrub_hides_local_parts_and_bracketed_names() -> None:
    from workers.mail import scrub

    reply = "550 5.1.1 <jane.doe>: Recipient address rejected: jane.doe unknown"
    cleaned = scrub(reply, ("jane.doe@example.org",))
    assert "jane" not in cleaned and cleaned.startswith("550 5.1.1 <address>")
