"""The transactional outbox, delivered.

Every change that owes someone a message wrote an outbox row in its own transaction
(:func:`dropin.store.uow.outbox_insert`). The parts, each its own module:

- :mod:`.claims` — take due rows in batches (first in line per session and member), keep
  the claim, mark each row sent, skipped, retried or failed;
- :mod:`.compose` — what a row says, composed at send time from one typed context;
- :mod:`.producers` — messages owed by the calendar: invitations and reminders;
- :mod:`.admin` — queue depth for /healthz, rows by status, retry a failed one;
- :mod:`.retention` — purge the records of sessions long over.

The names the web app uses are re-exported here.
"""

from __future__ import annotations

from dropin.services.outbox.admin import list_rows, retry_row, stats
from dropin.services.outbox.producers import invite_group

__all__ = ["invite_group", "list_rows", "retry_row", "stats"]
