// Reads a JSON array of iCalendar texts on stdin and prints, for each, what ical.js (Mozilla's
// parser, used by Thunderbird) understands: METHOD and, per VEVENT, UID, SEQUENCE, STATUS, the
// start/end as POSIX seconds and the time zone it resolved the TZID to.
// Usage: node icaljs_dump.mjs < docs.json
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

function instant(time) {
  return { epoch: time.toUnixTime(), zone: time.zone ? time.zone.tzid : null };
}

function dump(text) {
  const calendar = new ICAL.Component(ICAL.parse(text));
  return {
    method: calendar.getFirstPropertyValue("method"),
    events: calendar.getAllSubcomponents("vevent").map((vevent) => {
      const event = new ICAL.Event(vevent);
      const start = instant(event.startDate);
      const end = instant(event.endDate);
      return {
        uid: event.uid,
        sequence: event.sequence,
        status: vevent.getFirstPropertyValue("status"),
        summary: event.summary,
        start: start.epoch,
        end: end.epoch,
        start_zone: start.zone,
        end_zone: end.zone,
      };
    }),
  };
}

const docs = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(docs.map(dump)));
