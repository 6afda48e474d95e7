"""MCP servers configured on an agent: their tools reach the LLM through livekit-agents' MCP
support (``llm.mcp``), set up when the session starts.

A server that cannot be reached, or whose address the egress policy refuses
(``STIMM_EGRESS_ALLOW``, checked when the session is built), leaves the call running without its
tools, and the caller is told which tools are missing rather than meeting a silent agent later.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from livekit.agents import utils
from livekit.agents.llm import ToolError, mcp
from mcp.types import TextContent

from stimm.egress import EgressPolicy, EgressRefused
from stimm.schema import AgentConfig, McpServerTool

logger = logging.getLogger("stimm.worker")


@dataclass(frozen=True)
class McpTools:
    """One configured server and the toolset livekit sets up from it (none when refused)."""

    name: str
    server: mcp.MCPServerHTTP | None
    toolset: mcp.MCPToolset | None

    @property
    def available(self) -> bool:
        return self.server is not None and self.server.initialized


def text_result(ctx: mcp.MCPToolResultContext) -> str:
    """A tool's text answer as the text itself for the LLM to read (livekit would hand it the
    JSON envelope, which a small model reads out); anything else stays JSON."""
    content = ctx.result.content
    texts = [item.text for item in content if isinstance(item, TextContent)]
    if not content:
        raise ToolError(f"The tool {ctx.tool_name} answered nothing.")
    if len(texts) == len(content):
        return "\n".join(texts)
    return json.dumps([item.model_dump(by_alias=True) for item in content], ensure_ascii=False)


def mcp_tools(config: AgentConfig, policy: EgressPolicy | None = None) -> list[McpTools]:
    """The toolsets of the agent's MCP servers, in configured order (not connected yet)."""
    policy = policy or EgressPolicy.from_env()
    out: list[McpTools] = []
    for spec in config.tools:
        if isinstance(spec, McpServerTool):
            try:
                policy.check_url(spec.url)
            except EgressRefused as e:
                logger.warning("MCP server %s refused: %s", spec.name, e)
                out.append(McpTools(spec.name, None, None))
                continue
            server = mcp.MCPServerHTTP(
                url=spec.url,
                transport_type=spec.transport,
                allowed_tools=spec.allowed_tools,
                # the worker's config route has put the secrets' values in place of references
                headers={k: v for k, v in spec.headers.items() if isinstance(v, str)},
                timeout=spec.timeout_s,
                client_session_timeout_seconds=spec.timeout_s,
                tool_result_resolver=text_result,
            )
            toolset = mcp.MCPToolset(id=utils.shortuuid("mcp_"), mcp_server=server)
            out.append(McpTools(spec.name, server, toolset))
    return out


def unavailable_notice(servers: list[McpTools]) -> str | None:
    """What to tell the caller about servers that did not connect, or ``None`` if all did."""
    down = [s.name for s in servers if not s.available]
    if not down:
        return None
    names = down[0] if len(down) == 1 else ", ".join(down[:-1]) + " and " + down[-1]
    return f"Sorry, my {names} tools are not available right now."
