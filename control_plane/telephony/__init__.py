"""Telephony in the control plane: phone numbers routed to agents, and call records."""
