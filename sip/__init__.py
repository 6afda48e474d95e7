"""LiveKit SIP provisioning for Stimm: thin, idempotent ``ensure_*`` functions over
``livekit.api`` (see ``sip.provisioning``)."""

from sip.provisioning import (
    InboundNumber,
    OutboundTrunk,
    Provisioned,
    dial,
    ensure_dispatch_rule,
    ensure_inbound_number,
    ensure_inbound_trunk,
    ensure_outbound_trunk,
    ensure_unassigned_trunk,
    remove_inbound_number,
    sync_inbound_numbers,
)

__all__ = [
    "InboundNumber",
    "OutboundTrunk",
    "Provisioned",
    "dial",
    "ensure_dispatch_rule",
    "ensure_inbound_number",
    "ensure_inbound_trunk",
    "ensure_outbound_trunk",
    "ensure_unassigned_trunk",
    "remove_inbound_number",
    "sync_inbound_numbers",
]
