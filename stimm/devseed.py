"""The default agent ``stimm dev`` creates so a fresh install has someone to talk to."""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_AGENT_NAME = "Stimm assistant"


def default_agent() -> dict[str, Any]:
    """Offline STT/TTS; the LLM is a local OpenAI-compatible server (Ollama by default)."""
    return {
        "name": DEFAULT_AGENT_NAME,
        "instructions": (
            "You are Stimm, a friendly voice assistant. Answer in one or two short spoken "
            "sentences, without lists or markdown."
        ),
        "greeting": "Hello! I'm the Stimm assistant. How can I help you today?",
        "language": "en",
        "stt": {"provider": "local"},
        "llm": {
            "provider": os.environ.get("STIMM_DEV_LLM_PROVIDER", "ollama"),
            "model": os.environ.get("STIMM_DEV_LLM_MODEL", "llama3.2"),
            "options": {
                "base_url": os.environ.get("STIMM_DEV_LLM_BASE_URL", "http://127.0.0.1:11434/v1")
            },
        },
        "tts": {"provider": "local"},
    }


def ensure_default_agent(control_plane_url: str, api_key: str) -> dict[str, Any]:
    """Return the default agent, creating it on first start."""
    with httpx.Client(
        base_url=control_plane_url,
        timeout=10,
        headers={"Authorization": f"Bearer {api_key}"},
    ) as http:
        resp = http.get("/api/agents", params={"limit": 100})
        resp.raise_for_status()
        body = resp.json()
        items = body["items"] if isinstance(body, dict) else body
        for agent in items:
            if agent["name"] == DEFAULT_AGENT_NAME:
                return dict(agent)
        created = http.post("/api/agents", json=default_agent())
        created.raise_for_status()
        return dict(created.json())
