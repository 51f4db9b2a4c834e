"""Write the join page's protocol constants (``static/js/protocol.js``) from ``protocol.py``.

The page must not hand-copy message types, error codes, close codes or end reasons: it imports
them from ``protocol.js``, which this module generates from the enums and message tables of
``signaling.protocol``. Run it after changing the protocol::

    python -m signaling.protocol_js           # rewrite signaling/static/js/protocol.js
    python -m signaling.protocol_js --check   # exit 1 if the file is stale (tests do this too)

The output is deterministic: the enums in the order ``protocol.py`` defines them, members in
their own order, message types sorted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from enum import Enum, IntEnum
from pathlib import Path
from typing import Final

from signaling import protocol

__all__ = ["COMMAND", "TARGET", "generate", "main"]

TARGET: Final = Path(__file__).parent / "static" / "js" / "protocol.js"
COMMAND: Final = "python -m signaling.protocol_js"

# Plain numbers the page needs as they are.
_NUMBERS: Final = ("PROTOCOL_VERSION", "MAX_DISPLAY_NAME_CHARS", "MAX_MESSAGE_BYTES")


def _enums() -> list[type[Enum]]:
    """Every enum ``protocol.py`` defines, in the order it defines them."""
    return [
        value
        for value in vars(protocol).values()
        if isinstance(value, type)
        and issubclass(value, Enum)
        and value.__module__ == protocol.__name__
    ]


def _literal(value: str | int) -> str:
    # json.dumps writes a JavaScript string literal too; ASCII only, so the file has no
    # encoding to get wrong.
    return str(value) if isinstance(value, int) else json.dumps(value, ensure_ascii=True)


def _frozen(name: str, doc: str, entries: Iterable[tuple[str, str | int]]) -> list[str]:
    lines = [f"/** {doc} */", f"export const {name} = Object.freeze({{"]
    lines += [f"  {key}: {_literal(value)}," for key, value in entries]
    lines += ["});", ""]
    return lines


def _summary(cls: type[Enum]) -> str:
    # Only a docstring the enum itself carries (not one inherited from StrEnum or IntEnum).
    doc = cls.__dict__.get("__doc__") or ""
    first = doc.strip().split("\n\n")[0]
    text = " ".join(first.split()).replace("``", "`")
    return f"protocol.{cls.__name__}" + (f": {text}" if text else ".")


def _types(table: Mapping[str, type[object]]) -> list[tuple[str, str]]:
    return [(kind.upper(), kind) for kind in sorted(table)]


def generate() -> str:
    """The text of ``protocol.js`` for the current ``signaling.protocol``."""
    lines = [
        f"// Generated from signaling/protocol.py by `{COMMAND}`: do not edit.",
        "// Change protocol.py, then run the command again; while this file is stale,",
        f"// `{COMMAND} --check` and tests/signaling/test_protocol_js.py fail.",
        "",
    ]
    for name in _NUMBERS:
        value = getattr(protocol, name)
        assert isinstance(value, int)
        lines.append(f"export const {name} = {value};")
    lines.append("")
    for cls in _enums():
        values: list[tuple[str, str | int]] = [
            (member.name, int(member) if isinstance(member, IntEnum) else str(member.value))
            for member in cls
        ]
        lines += _frozen(cls.__name__, _summary(cls), values)
    lines += _frozen(
        "ClientType",
        "The `type` of each message the page may send (protocol.CLIENT_MESSAGE_TYPES).",
        _types(protocol.CLIENT_MESSAGE_TYPES),
    )
    lines += _frozen(
        "ServerType",
        "The `type` of each message the server sends (protocol.SERVER_MESSAGE_TYPES).",
        _types(protocol.SERVER_MESSAGE_TYPES),
    )
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Write or check " + str(TARGET))
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file is stale; write nothing"
    )
    args = parser.parse_args(argv)
    text = generate()
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else None
    if args.check:
        if current != text:
            print(f"{TARGET} is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        print(f"{TARGET} is up to date")
        return 0
    if current != text:
        TARGET.write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {TARGET}")
    else:
        print(f"{TARGET} is already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
