"""Independent iCalendar parsers, driven the same way, for tests/domain/test_ical_parsers.py.

Each reader takes a list of iCalendar texts and returns, per text, the METHOD and per VEVENT
the UID, SEQUENCE, STATUS, SUMMARY, start/end as POSIX seconds and the TZID it resolved:

- ical.js (npm, Mozilla's parser behind Thunderbird): ``node icaljs_dump.mjs``
- libical (Debian's gir1.2-ical-3.0, through python3-gi): ``/usr/bin/python3 libical_dump.py``
- vobject (PyPI, in this process)

Texts are batched: one node and one system-python process for the whole session.
scripts/install-parsers.sh installs the first two.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

HERE = Path(__file__).resolve().parent
INSTALL_SCRIPT = "scripts/install-parsers.sh"
SYSTEM_PYTHON = "/usr/bin/python3"


class Read(TypedDict):
    uid: str
    sequence: int
    status: str | None
    summary: str | None
    start: int
    end: int
    start_zone: str | None
    end_zone: str | None


class Dump(TypedDict):
    method: str | None
    events: list[Read]


def missing_tools() -> list[str]:
    """What is missing for the out-of-process parsers, in words; empty when all is there."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node (Debian package nodejs)")
    if not (HERE / "node_modules" / "ical.js" / "package.json").is_file():
        missing.append("ical.js in tests/parsers/node_modules (npm ci --prefix tests/parsers)")
    probe = "import gi; gi.require_version('ICalGLib', '3.0'); from gi.repository import ICalGLib"
    if not Path(SYSTEM_PYTHON).is_file():
        missing.append(f"{SYSTEM_PYTHON} (Debian package python3)")
    elif subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode != 0:
        missing.append("libical GObject bindings (Debian packages gir1.2-ical-3.0 python3-gi)")
    return missing


def _run(argv: list[str], texts: list[str]) -> list[Dump]:
    done = subprocess.run(
        argv,
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=HERE,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{done.stderr}")
    result: list[Dump] = json.loads(done.stdout)
    return result


def read_icaljs(texts: list[str]) -> list[Dump]:
    return _run(["node", str(HERE / "icaljs_dump.mjs")], texts)


def read_libical(texts: list[str]) -> list[Dump]:
    return _run([SYSTEM_PYTHON, str(HERE / "libical_dump.py")], texts)


def read_vobject(texts: list[str]) -> list[Dump]:
    return [_vobject_dump(text) for text in texts]


def _vobject_dump(text: str) -> Dump:
    import vobject
    import vobject.icalendar

    # vobject keeps one process-wide TZID -> tzinfo map and lets the *first* VTIMEZONE seen
    # for a TZID win (and falls back to pytz for unknown ones). Start each text from a clean
    # map so every calendar is read with its own VTIMEZONE, as a client reading it would.
    registry: dict[str, Any] = getattr(vobject.icalendar, "__tzidMap")
    registry.clear()
    vobject.icalendar.registerTzid("UTC", vobject.icalendar.utc)

    calendar = vobject.readOne(text)
    method = calendar.contents.get("method")
    events: list[Read] = []
    zones = {tz.tzid.value: tz for tz in calendar.contents.get("vtimezone", [])}
    for vevent in calendar.contents.get("vevent", []):
        start, start_zone = _vobject_instant(vevent.dtstart, zones)
        end, end_zone = _vobject_instant(vevent.dtend, zones)
        contents = vevent.contents
        events.append(
            Read(
                uid=vevent.uid.value,
                sequence=int(vevent.sequence.value) if "sequence" in contents else 0,
                status=vevent.status.value if "status" in contents else None,
                summary=vevent.summary.value if "summary" in contents else None,
                start=start,
                end=end,
                start_zone=start_zone,
                end_zone=end_zone,
            )
        )
    return Dump(method=method[0].value if method else None, events=events)


def _vobject_instant(prop: Any, zones: dict[str, Any]) -> tuple[int, str | None]:
    import vobject.icalendar

    value = prop.value
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"vobject read a floating or date value: {value!r}")
    # vobject moves TZID to X-VOBJ-ORIGINAL-TZID once it has resolved it.
    tzid = prop.params.get("X-VOBJ-ORIGINAL-TZID", [None])[0]
    if tzid is not None and type(value.tzinfo).__module__ != "dateutil.tz.tz":
        # vobject used pytz's copy of the zone instead of the VTIMEZONE in the text. It does
        # that by design only when the VTIMEZONE looks like UTC over 2000-2020 (its
        # tzinfo_eq); the instants are still compared. Anything else is a harness failure.
        ours = zones[tzid].tzinfo
        if not vobject.icalendar.tzinfo_eq(ours, vobject.icalendar.utc):
            raise ValueError(f"vobject resolved {tzid} to {type(value.tzinfo)!r}")
    return int(value.timestamp()), tzid
