"""Keep Ray on the loopback interface.

Ray resolves ``127.0.0.1`` to the machine's outward address unless told that the cluster
is local; on this project's machines every Ray process must talk over 127.0.0.1 only.
Setting ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` before Ray is imported makes Ray keep the
loopback address for the head node and for drivers. econml imports Ray when it is
imported, so in a driver that has already imported econml the variable comes too late;
the constant Ray read from it (``ray._private.ray_constants.ENABLE_RAY_CLUSTER``, read
again at every address lookup) is then set as well.
"""

from __future__ import annotations

import os
import sys

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_loopback(address: str | None) -> bool:
    """Whether a Ray address (``host:port`` or ``ray://host:port``) points at this machine."""
    if address is None or address == "local":
        return True
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host in LOOPBACK_HOSTS


def pin_ray_to_loopback() -> None:
    """Tell Ray (not yet imported, or about to start nodes) to stay on 127.0.0.1."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # Ray was imported already (econml imports it)
        constants.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]
