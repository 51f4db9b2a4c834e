"""The join page's protocol.js: generated from signaling/protocol.py, and not stale."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from signaling import protocol, protocol_js

JS = Path(protocol_js.TARGET)
STATIC_JS = JS.parent
_OBJECT = re.compile(r"^export const (\w+) = Object\.freeze\(\{\n(.*?)\n\}\);$", re.M | re.S)
_ENTRY = re.compile(r"^  ([A-Z][A-Z0-9_]*): (.+),$")
_NUMBER = re.compile(r"^export const (\w+) = (\d+);$", re.M)


def parsed(text: str) -> dict[str, object]:
    """The constants of a protocol.js text, read back independently of the generator."""
    found: dict[str, object] = {name: int(v) for name, v in _NUMBER.findall(text)}
    for name, body in _OBJECT.findall(text):
        entries: dict[str, object] = {}
        for line in body.split("\n"):
            match = _ENTRY.match(line)
            assert match, f"{name}: unexpected line {line!r}"
            entries[match[1]] = json.loads(match[2])
        found[name] = entries
    return found


def test_committed_file_is_up_to_date() -> None:
    assert JS.read_text(encoding="utf-8") == protocol_js.generate(), (
        f"{JS} is stale: run `{protocol_js.COMMAND}` and commit the result"
    )


def test_check_command_says_whether_the_file_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "protocol.js"
    monkeypatch.setattr(protocol_js, "TARGET", target)
    assert protocol_js.main(["--check"]) == 1  # missing
    assert "is stale" in capsys.readouterr().err
    assert protocol_js.main([]) == 0
    assert target.read_text(encoding="utf-8") == protocol_js.generate()
    assert protocol_js.main(["--check"]) == 0
    target.write_text(target.read_text(encoding="utf-8").replace("4410", "4411"))
    assert protocol_js.main(["--check"]) == 1
    assert "python -m signaling.protocol_js" in capsys.readouterr().err


def test_generation_is_deterministic() -> None:
    assert protocol_js.generate() == protocol_js.generate()


def test_values_round_trip_to_the_python_enums() -> None:
    consts = parsed(JS.read_text(encoding="utf-8"))
    enums = (
        protocol.ErrorCode,
        protocol.CloseCode,
        protocol.Role,
        protocol.ParticipantState,
        protocol.LeaveReason,
        protocol.EndReason,
    )
    for enum in enums:
        assert consts[enum.__name__] == {m.name: m.value for m in enum}, enum.__name__
    assert consts["CloseCode"]["ROOM_ENDED"] == 4410  # type: ignore[index]
    assert consts["EndReason"]["RESCHEDULED"] == "rescheduled"  # type: ignore[index]
    assert consts["ErrorCode"]["INVALID_VALUE"] == "invalid_value"  # type: ignore[index]
    assert consts["PROTOCOL_VERSION"] == protocol.PROTOCOL_VERSION
    assert consts["MAX_DISPLAY_NAME_CHARS"] == protocol.MAX_DISPLAY_NAME_CHARS
    client = consts["ClientType"]
    server = consts["ServerType"]
    assert isinstance(client, dict) and isinstance(server, dict)
    assert sorted(client.values()) == sorted(protocol.CLIENT_MESSAGE_TYPES)
    assert sorted(server.values()) == sorted(protocol.SERVER_MESSAGE_TYPES)
    assert client["ACCEPT_AGREEMENT"] == protocol.AcceptAgreement.type
    assert server["KNOCK"] == protocol.Knocking.type


def test_the_page_copies_no_protocol_value_by_hand() -> None:
    """Close codes, message types and error codes come from protocol.js, not page literals."""
    codes = {str(int(c)) for c in protocol.CloseCode if c is not protocol.CloseCode.NORMAL}
    kinds = {*protocol.CLIENT_MESSAGE_TYPES, *protocol.SERVER_MESSAGE_TYPES}
    errors = {str(c) for c in protocol.ErrorCode}
    for path in sorted(STATIC_JS.glob("*.js")):
        if path == JS:
            continue
        text = path.read_text(encoding="utf-8")
        for code in codes:
            assert not re.search(rf"\b{code}\b", text), f"{path.name} has close code {code}"
        # An RTCSessionDescription's own type ({type: "offer", sdp}) is WebRTC's, not ours.
        typed = re.findall(r"\btype\s*(?::|===?)\s*\"(\w+)\"(?!,\s*sdp\b)", text)
        assert not kinds & set(typed), f"{path.name} spells message types by hand: {typed}"
        coded = re.findall(r"\bcode\s*===?\s*\"(\w+)\"", text)
        assert not errors & set(coded), f"{path.name} spells error codes by hand: {coded}"


@pytest.mark.skipif(shutil.which("node") is None, reason="node (Debian package nodejs) missing")
def test_node_imports_the_module_and_its_objects_are_frozen() -> None:
    script = (
        f"import * as p from {json.dumps(JS.as_uri())};"
        "const out = {};"
        "for (const [k, v] of Object.entries(p)) out[k] = [v, Object.isFrozen(v)];"
        "console.log(JSON.stringify(out));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    read = json.loads(done.stdout)
    assert all(frozen for _value, frozen in read.values())
    assert {k: v for k, (v, _frozen) in read.items()} == parsed(protocol_js.generate())


def test_join_html_loads_app_and_preloads_every_other_module() -> None:
    """The modules are fetched in parallel (modulepreload), not one import level at a time."""
    html = (STATIC_JS.parent / "join.html").read_text(encoding="utf-8")
    assert '<script type="module" src="/rooms/static/js/app.js"></script>' in html
    preloaded = set(
        re.findall(r'<link rel="modulepreload" href="/rooms/static/js/([\w-]+\.js)">', html)
    )
    assert preloaded == {p.name for p in STATIC_JS.glob("*.js")} - {"app.js"}
