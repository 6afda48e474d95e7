"""Local stack orchestration shared by ``stimm dev`` and the end-to-end tests."""

from .binaries import LIVEKIT_SERVER, LIVEKIT_SIP, TOXIPROXY, ensure_binary
from .local import LocalStack, StackOptions
from .process import ManagedProcess, StackError

__all__ = [
    "LIVEKIT_SERVER",
    "LIVEKIT_SIP",
    "LocalStack",
    "ManagedProcess",
    "StackError",
    "StackOptions",
    "TOXIPROXY",
    "ensure_binary",
]
