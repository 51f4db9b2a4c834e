"""The `dropin` command line: the organizer's everyday work, and `dropin dev` end to end."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from dropin.cli import main
from dropin.devredis import free_port
from tests.conftest import SECRET


@pytest.fixture
def cli(sqlite_url: str) -> CliRunner:
    return CliRunner(env={"DROPIN_DATABASE_URL": sqlite_url, "DROPIN_SECRET_KEY": SECRET})


def run(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_organizer_workflow(cli: CliRunner, tmp_path: Path) -> None:
    group = run(cli, "groups", "create", "--name", "Circle", "--timezone", "Europe/London")
    csv = tmp_path / "people.csv"
    csv.write_text(
        "display_name,email,role\nLee,lee@example.org,facilitator\nAnn,ann@example.org,\n"
        "Bea,bea@example.org,parent\n"
    )
    imported = run(cli, "members", "import", group, str(csv)).splitlines()
    assert len(imported) == 3
    ann_id = imported[1].split()[0]
    bea_id = imported[2].split()[0]
    series_id = run(
        cli,
        "series",
        "create",
        group,
        "--title",
        "Evening drop-in",
        "--rrule",
        "FREQ=MONTHLY;BYDAY=2TU",
        "--first-start",
        "2026-01-13T19:30",
        "--capacity",
        "1",
    )
    assert re.fullmatch(r"[0-9a-f]{32}", series_id)
    listing = run(cli, "sessions", "list", group, "--days", "60")
    session_id = re.findall(r"\[([0-9a-f]{32})\]", listing)[0]
    assert "Evening drop-in" in listing and "0/1 booked" in listing
    assert run(cli, "sessions", "book", session_id, ann_id).endswith("confirmed")
    assert "waitlist #1" in run(cli, "sessions", "book", session_id, bea_id)
    listing = run(cli, "sessions", "list", group, "--days", "60")
    assert "Ann" in listing and "Bea" in listing and "waitlist #1" in listing
    # Emails never show in session listings.
    assert "@" not in listing


def test_errors_are_messages_not_tracebacks(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(main, ["groups", "create", "--name", "x", "--timezone", "Nowhere/Here"])
    assert result.exit_code == 1
    assert "invalid_timezone" in result.output and "Traceback" not in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("display_name,email\nAnn,not-an-email\n")
    group = run(cli, "groups", "create", "--name", "C", "--timezone", "UTC")
    result = cli.invoke(main, ["members", "import", group, str(bad)])
    assert result.exit_code == 1 and "line 2" in result.output


def test_create_key_prints_it_once(cli: CliRunner) -> None:
    key = run(cli, "admin", "create-key", "ops")
    assert key.startswith("dk_")
    listed = run(cli, "admin", "list-keys")
    assert "ops" in listed and key not in listed


def test_missing_secret_names_the_variable(sqlite_url: str, tmp_path: Path) -> None:
    # An empty data folder: the checkout's own .dropin/ (left by `make dev`) holds a dev secret
    # that organizer commands would rightly reuse.
    env = {
        "DROPIN_DATABASE_URL": sqlite_url,
        "DROPIN_SECRET_KEY": "",
        "DROPIN_DATA_DIR": str(tmp_path / "data"),
    }
    result = CliRunner(env=env).invoke(main, ["groups", "list"])
    assert result.exit_code == 2 and "DROPIN_SECRET_KEY" in result.output


def test_help_reads_well() -> None:
    result = CliRunner().invoke(main, ["--help"])
    for command in (
        "dev",
        "serve",
        "worker",
        "db",
        "admin",
        "groups",
        "members",
        "series",
        "sessions",
    ):
        assert command in result.output


@pytest.mark.slow
def test_dropin_dev_runs_everything_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPIN_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropin", "dev", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("─") and any("Join links" in x for x in lines):
                break
        out = "".join(lines)
        key = re.search(r"Admin key:\s+(\S+)", out)
        group = re.search(r"Demo group:\s+(\S+)", out)
        redis_port = re.search(r"Redis:\s+redis://127.0.0.1:(\d+)", out)
        links = re.findall(r"\((parent|facilitator)\): (\S+)", out)
        assert key and group and redis_port, out
        assert {role for role, _ in links} == {"parent", "facilitator"}
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        found = httpx.get(
            f"{base}/api/v1/groups/{group.group(1)}/sessions",
            headers={"Authorization": f"Bearer {key.group(1)}"},
        ).json()["sessions"]
        assert found and found[-1]["confirmed_count"] == 2
        assert httpx.get(links[0][1]).status_code == 200
        assert (tmp_path / "dropin.db").exists() and (tmp_path / "outbox").is_dir()
        # The in-process worker mails the demo's invites into the outbox folder.
        deadline = time.monotonic() + 30
        while len(list((tmp_path / "outbox").glob("*.eml"))) < 6 and time.monotonic() < deadline:
            time.sleep(0.2)
        mails = [p.read_bytes() for p in (tmp_path / "outbox").glob("*.eml")]
        assert len(mails) >= 6, len(mails)
        assert any(b'method="REQUEST"' in m for m in mails)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    # The private Redis went with it.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(redis_port.group(1))), timeout=1)
    assert proc.returncode == 0


def test_organizer_commands_reuse_the_dev_secret(sqlite_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret_key").write_text("d" * 48)
    runner = CliRunner(
        env={
            "DROPIN_DATABASE_URL": sqlite_url,
            "DROPIN_DATA_DIR": str(data),
            "DROPIN_SECRET_KEY": "",
        }
    )
    result = runner.invoke(main, ["groups", "list"])
    assert result.exit_code == 0, result.output


def test_an_unmigrated_database_gets_a_message(tmp_path: Path) -> None:
    runner = CliRunner(
        env={
            "DROPIN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/new.db",
            "DROPIN_SECRET_KEY": SECRET,
        }
    )
    result = runner.invoke(main, ["groups", "list"])
    assert result.exit_code == 1
    assert "dropin db upgrade" in result.output and "Traceback" not in result.output


def test_accounts_and_a_key_that_acts_as_one(cli: CliRunner) -> None:
    account_id = run(
        cli, "accounts", "create", "Olga@Example.org", "--name", "Olga", "--role", "organizer"
    )
    assert re.fullmatch(r"[0-9a-f]{32}", account_id)
    assert "organizer   olga@example.org" in run(cli, "accounts", "list")
    key = run(cli, "admin", "create-key", "olga's script", "--account", "olga@example.org")
    assert key.startswith("dk_")
    mine = run(cli, "groups", "create", "--name", "Hers", "--timezone", "UTC",
               "--organizer", "olga@example.org")  # fmt: skip
    run(cli, "groups", "create", "--name", "Not hers", "--timezone", "UTC")
    result = cli.invoke(main, ["accounts", "create", "olga@example.org", "--name", "Again"])
    assert result.exit_code == 1 and "account_exists" in result.output
    result = cli.invoke(main, ["admin", "create-key", "x", "--account", "nobody@example.org"])
    assert result.exit_code == 1 and "account_not_found" in result.output
    assert run(cli, "accounts", "disable", "olga@example.org") == "olga@example.org disabled"
    assert "disabled" in run(cli, "accounts", "list")
    assert re.fullmatch(r"[0-9a-f]{32}", mine)


def test_members_erase(cli: CliRunner) -> None:
    group = run(cli, "groups", "create", "--name", "Circle", "--timezone", "UTC")
    member = run(cli, "members", "add", group, "--name", "Ann", "--email", "ann@example.org")
    assert run(cli, "members", "erase", member) == f"{member} erased"
    assert "ann@example.org" not in run(cli, "members", "list", group)
    result = cli.invoke(main, ["members", "erase", member])
    assert result.exit_code == 1 and "member_not_found" in result.output


def test_only_an_organizer_account_can_organize_a_group(cli: CliRunner) -> None:
    run(cli, "accounts", "create", "fay@staff.example", "--name", "Fay", "--role", "facilitator")
    result = cli.invoke(
        main,
        [
            "groups",
            "create",
            "--name",
            "G",
            "--timezone",
            "UTC",
            "--organizer",
            "fay@staff.example",
        ],
    )
    assert result.exit_code == 1 and "not_an_organizer" in result.output
