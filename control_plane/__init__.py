"""Stimm control plane: agents, sessions and transcripts over HTTP (FastAPI + SQLModel)."""
