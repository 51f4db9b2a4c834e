"""The ``{name:id}`` path convertor: ids are 32 lower-case hex characters.

Anything else in an id's place is a plain 404 before a handler runs, so odd bytes (NUL,
very long strings) never reach the database. Import this module before defining routes.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

PATTERN = "[0-9a-f]{32}"


class IdConvertor(Convertor[str]):
    regex = PATTERN

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("id", IdConvertor())
