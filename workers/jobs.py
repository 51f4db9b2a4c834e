"""arq jobs. Each takes ids or nothing, never objects; ``ctx`` carries the lifespan state."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from dropin.config import Settings
from dropin.services.series import extend_horizons
from dropin.store.db import Database

log = logging.getLogger("dropin.worker")


async def extend_horizon(ctx: dict[str, Any]) -> int:
    """Materialize every series' sessions up to the configured horizon; returns rows created."""
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    created = await extend_horizons(db, now=datetime.now(UTC), horizon_days=settings.horizon_days)
    log.info("horizon extended: %d sessions created", created)
    return created
