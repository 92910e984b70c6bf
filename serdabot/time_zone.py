"""TIME_ZONE: the zone the dashboard's hours, days and months are counted in.

Unset, it is the machine's own zone (tzlocal reads it on Linux, macOS and Windows),
so a streamer's dashboard starts its days at their midnight; UTC when the machine
does not say. A name the zone database does not know stops start-up with one line.
"""

from __future__ import annotations

import logging
import zoneinfo

from serdabot.env import SettingError

log = logging.getLogger("serdabot.settings")


def known(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def machine_time_zone() -> str:
    try:
        import tzlocal

        name = tzlocal.get_localzone_name()
    except Exception:  # tzlocal raises its own errors on a half-configured machine
        return "UTC"
    return name if name and known(name) else "UTC"


def time_zone(configured: str) -> str:
    """TIME_ZONE's value when set (checked), else the machine's zone."""
    if not configured:
        return machine_time_zone()
    if not known(configured):
        raise SettingError(
            f"TIME_ZONE: unknown time zone {configured!r}; use an IANA name such as Europe/Paris or UTC"
        )
    return configured
