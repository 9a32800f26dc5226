"""Publish/subscribe with replay (``app.broadcast``); see :mod:`rat_engine.broadcast.hub`."""

from .base import BroadcastBackend, BroadcastNotReplicated, BroadcastUnavailable, Message
from .hub import Broadcast, create_backend
from .subscription import POLICIES, RESYNC_EVENT, Subscription

__all__ = [
    "POLICIES",
    "RESYNC_EVENT",
    "Broadcast",
    "BroadcastBackend",
    "BroadcastNotReplicated",
    "BroadcastUnavailable",
    "Message",
    "Subscription",
    "create_backend",
]
