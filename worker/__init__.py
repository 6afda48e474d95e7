"""The Stimm LiveKit Agents worker."""
