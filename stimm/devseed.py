"""What ``stimm dev`` creates so a fresh install has someone to talk to and a number to call."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

DEFAULT_AGENT_NAME = "Stimm assistant"
DEMO_NUMBER = "+15550100"
DEMO_NUMBER_NAME = "Demo number (stimm dev)"
_DEMO_MARKER = "demo-number-created"
"""Written to the data folder once the demo number exists: a number the user deleted or
changed is theirs, and the next start leaves it alone."""

_OLD_SEED_LLM = {"provider": "ollama", "model": "llama3.2"}
"""The default agent's LLM before the embedded one existed (an Ollama that was rarely there)."""


def default_llm() -> dict[str, Any]:
    """The embedded offline LLM, or what ``STIMM_DEV_LLM_*`` names instead."""
    provider = os.environ.get("STIMM_DEV_LLM_PROVIDER", "local")
    spec: dict[str, Any] = {"provider": provider}
    if model := os.environ.get("STIMM_DEV_LLM_MODEL"):
        spec["model"] = model
    if base_url := os.environ.get("STIMM_DEV_LLM_BASE_URL"):
        spec["options"] = {"base_url": base_url}
    return spec


def default_agent() -> dict[str, Any]:
    """Offline STT, LLM and TTS: nothing to install or pay for."""
    return {
        "name": DEFAULT_AGENT_NAME,
        "instructions": (
            "You are Stimm, a friendly voice assistant. Answer in one or two short spoken "
            "sentences, without lists or markdown."
        ),
        "greeting": "Hello! I'm the Stimm assistant. How can I help you today?",
        "language": "en",
        "stt": {"provider": "local"},
        "llm": default_llm(),
        "tts": {"provider": "local"},
    }


def _client(control_plane_url: str, api_key: str) -> httpx.Client:
    return httpx.Client(
        base_url=control_plane_url, timeout=30, headers={"Authorization": f"Bearer {api_key}"}
    )


def _on_old_seed_llm(agent: dict[str, Any]) -> bool:
    specs = agent["llm"] if isinstance(agent["llm"], list) else [agent["llm"]]
    return len(specs) == 1 and all(specs[0].get(k) == v for k, v in _OLD_SEED_LLM.items())


def ensure_default_agent(control_plane_url: str, api_key: str) -> dict[str, Any]:
    """Return the default agent, creating it on first start.

    A default agent still on the old Ollama seed moves to the embedded LLM unless
    ``STIMM_DEV_LLM_PROVIDER`` says otherwise; any other change a user made is kept.
    """
    with _client(control_plane_url, api_key) as http:
        resp = http.get("/api/agents", params={"limit": 100})
        resp.raise_for_status()
        body = resp.json()
        items = body["items"] if isinstance(body, dict) else body
        for agent in items:
            if agent["name"] != DEFAULT_AGENT_NAME:
                continue
            if _on_old_seed_llm(agent) and "STIMM_DEV_LLM_PROVIDER" not in os.environ:
                moved = http.patch(f"/api/agents/{agent['id']}", json={"llm": [default_llm()]})
                moved.raise_for_status()
                return dict(moved.json())
            return dict(agent)
        created = http.post("/api/agents", json=default_agent())
        created.raise_for_status()
        return dict(created.json())


def ensure_demo_number(
    control_plane_url: str, api_key: str, agent_id: str, data_dir: Path
) -> dict[str, Any] | None:
    """Assign the demo number to the default agent on first start; later starts keep it as
    the user left it. Returns the number with the name of the agent it rings, or ``None`` when
    the user removed it."""
    marker = data_dir / _DEMO_MARKER
    with _client(control_plane_url, api_key) as http:
        resp = http.get("/api/phone-numbers")
        resp.raise_for_status()
        number = next((n for n in resp.json()["items"] if n["number"] == DEMO_NUMBER), None)
        if number is None and not marker.exists():
            created = http.post(
                "/api/phone-numbers",
                json={"number": DEMO_NUMBER, "agent_id": agent_id, "name": DEMO_NUMBER_NAME},
            )
            created.raise_for_status()
            number = created.json()
        if number is None:
            return None
        marker.touch()
        agent = http.get(f"/api/agents/{number['agent_id']}")
        agent.raise_for_status()
        return {**number, "agent_name": agent.json()["name"]}


def sip_uri(number: str, address: str) -> str:
    """What a softphone (Linphone, Zoiper, MicroSIP) dials to reach ``number``."""
    return f"sip:{number}@{address}"


def sipp_command(number: str, address: str) -> str:
    """A SIPp line that calls ``number`` and hangs up after 10 s (no audio sent)."""
    return f"sipp -sn uac -s {number} -m 1 -d 10000 {address}"
