"""What happens after a call: its analysis by the agent's LLM, signed webhooks of its events,
and the masking of personal data in what is stored."""
