"""The contract between the app and its workers: job names, job ids, the health key.

The app enqueues jobs and reads the workers' heartbeat by these names; ``workers/`` registers
its functions under them. Both import them from here, so ``dropin`` never imports ``workers``.
"""

from __future__ import annotations

from datetime import datetime

# The arq job that delivers due outbox rows (enqueued after writes, and run from cron).
SWEEP_OUTBOX = "sweep_outbox"
# Where arq workers write their heartbeat (``dropin worker --check`` and /healthz read it).
HEALTH_KEY = "dropin:worker:health"


def sweep_job_id(now: datetime) -> str:
    """Nudges within one second share one sweep; the next second gets a fresh one."""
    return f"outbox-sweep-{int(now.timestamp())}"
