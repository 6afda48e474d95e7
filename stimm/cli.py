"""The ``stimm`` command: run the platform locally or one of its services."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
def setup() -> None:
    """Build (once) and cache the pinned Go binaries the stack runs."""
    from stimm.stack import LIVEKIT_SERVER, ensure_binary

    path = ensure_binary(LIVEKIT_SERVER, console)
    console.print(f"livekit-server {LIVEKIT_SERVER.version}: {path}")


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Control plane port.")] = 8000,
    livekit_port: Annotated[int, typer.Option(help="LiveKit signalling port.")] = 7880,
    workers: Annotated[int, typer.Option(help="Number of worker processes.")] = 1,
    data_dir: Annotated[Path, typer.Option(help="Where state and logs go.")] = Path(".stimm"),
) -> None:
    """Run the whole platform locally on embedded defaults until Ctrl-C."""
    from stimm.devseed import ensure_default_agent
    from stimm.stack import LocalStack, StackError, StackOptions
    from stimm.stack.local import DEV_API_KEY, DEV_API_SECRET

    logging.basicConfig(level=logging.WARNING)
    options = StackOptions(
        run_dir=data_dir.resolve(),
        database_url=os.environ.get("STIMM_DATABASE_URL"),
        control_plane_port=port,
        livekit_port=livekit_port,
        livekit_tcp_port=livekit_port + 1,
        livekit_udp_port=livekit_port + 2,
        redis_port=int(os.environ.get("STIMM_DEV_REDIS_PORT", "6380")),
        workers=workers,
        api_key=os.environ.get("LIVEKIT_API_KEY", DEV_API_KEY),
        api_secret=os.environ.get("LIVEKIT_API_SECRET", DEV_API_SECRET),
        worker_token=os.environ.get("STIMM_WORKER_TOKEN", "stimm-dev-worker-token"),
        dev=True,
    )
    stack = LocalStack(options)
    try:
        with console.status("Starting Redis, LiveKit, the control plane and the worker"):
            stack.start()
    except StackError as e:
        console.print(f"[red]Could not start the stack:[/red] {e}")
        raise typer.Exit(1) from e

    agent = ensure_default_agent(stack.control_plane_url)
    console.print(f"[bold green]Stimm is running.[/bold green] Logs: {stack.log_dir}")
    console.print(f"  Console:  [link]{stack.control_plane_url}/[/link]")
    console.print(f"  API docs: {stack.control_plane_url}/docs")
    console.print(f"  LiveKit:  {stack.livekit_url}  (key {options.api_key})")
    console.print(f"  Default agent: {agent['name']} ({agent['id']})")
    console.print("Press Ctrl-C to stop.")

    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping:
            dead = [p.name for p in stack.processes if not p.alive()]
            if dead:
                console.print(f"[red]{', '.join(dead)} stopped unexpectedly; see {stack.log_dir}")
                break
            time.sleep(1)
    finally:
        with console.status("Stopping"):
            stack.stop()


if __name__ == "__main__":
    app()
