"""Print what libical (via GObject introspection) reads from iCalendar texts.

Run by Debian's system interpreter, not the project's venv: ``/usr/bin/python3
libical_dump.py < docs.json`` where docs.json is a JSON array of iCalendar texts. Prints, for
each, METHOD and per VEVENT: UID, SEQUENCE, STATUS, start/end as POSIX seconds and the TZID
whose VTIMEZONE (from the same text, never libical's built-in zones) converted them.
"""

import json
import sys

import gi

gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib  # noqa: E402

DTSTART = ICalGLib.PropertyKind.DTSTART_PROPERTY
DTEND = ICalGLib.PropertyKind.DTEND_PROPERTY
METHOD = ICalGLib.PropertyKind.METHOD_PROPERTY
TZID = ICalGLib.ParameterKind.TZID_PARAMETER
STATUS = ICalGLib.PropertyKind.STATUS_PROPERTY
VEVENT = ICalGLib.ComponentKind.VEVENT_COMPONENT


def text_of(component, kind):
    prop = component.get_first_property(kind)
    return prop.get_value_as_string() if prop is not None else None


def instant(calendar, vevent, kind):
    prop = vevent.get_first_property(kind)
    value = prop.get_dtstart() if kind == DTSTART else prop.get_dtend()
    param = prop.get_first_parameter(TZID)
    if param is None:
        if not value.is_utc():
            raise ValueError("floating time")
        return value.as_timet_with_zone(ICalGLib.Timezone.get_utc_timezone()), None
    tzid = param.get_tzid()
    zone = calendar.get_timezone(tzid)  # the VTIMEZONE in this calendar, by TZID
    if zone is None:
        raise ValueError(f"no VTIMEZONE for {tzid}")
    return value.as_timet_with_zone(zone), tzid


def dump(text):
    calendar = ICalGLib.Component.new_from_string(text)
    if calendar is None:
        raise ValueError("libical could not parse the calendar")
    events = []
    vevent = calendar.get_first_component(VEVENT)
    while vevent is not None:
        start, start_zone = instant(calendar, vevent, DTSTART)
        end, end_zone = instant(calendar, vevent, DTEND)
        events.append(
            {
                "uid": vevent.get_uid(),
                "sequence": vevent.get_sequence(),
                "status": text_of(vevent, STATUS),
                "summary": vevent.get_summary(),
                "start": start,
                "end": end,
                "start_zone": start_zone,
                "end_zone": end_zone,
            }
        )
        vevent = calendar.get_next_component(VEVENT)
    return {"method": text_of(calendar, METHOD), "events": events}


def main():
    docs = json.load(sys.stdin)
    json.dump([dump(text) for text in docs], sys.stdout)


if __name__ == "__main__":
    main()
