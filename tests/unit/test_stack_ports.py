"""A port the local stack is told to use and that is taken stops the start with the name of
the setting to change, before any process starts (``stimm dev`` turns it into its option)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stimm.cli import app
from stimm.stack import LocalStack, StackOptions
from stimm.stack.process import PortInUse, free_port, free_udp_port

pytestmark = pytest.mark.unit


@pytest.fixture
def busy_udp() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", free_udp_port()))
        yield int(s.getsockname()[1])


@pytest.fixture
def busy_tcp() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", free_port()))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_busy_sip_port_names_the_sip_port_setting(tmp_path: Path, busy_udp: int) -> None:
    with pytest.raises(PortInUse) as e:
        LocalStack(StackOptions(run_dir=tmp_path, sip=True, sip_port=busy_udp))
    assert e.value.setting == "sip_port" and e.value.port == busy_udp
    assert e.value.protocol == "udp"


def test_a_busy_rtp_port_names_the_rtp_setting(tmp_path: Path, busy_udp: int) -> None:
    with pytest.raises(PortInUse) as e:
        LocalStack(StackOptions(run_dir=tmp_path, sip=True, rtp_port_start=busy_udp - 5))
    assert e.value.setting == "rtp_port_start" and e.value.port == busy_udp


def test_a_busy_llm_port_names_the_llm_setting(tmp_path: Path, busy_tcp: int) -> None:
    with pytest.raises(PortInUse) as e:
        LocalStack(StackOptions(run_dir=tmp_path, llm=True, llm_port=busy_tcp))
    assert e.value.setting == "llm_port"


def test_stimm_dev_says_which_option_to_change(tmp_path: Path, busy_tcp: int) -> None:
    # the console's port is checked first, so the other defaults being busy cannot interfere
    result = CliRunner().invoke(app, ["dev", "--data-dir", str(tmp_path), "--port", str(busy_tcp)])
    assert result.exit_code == 1
    assert f"Port {busy_tcp}/tcp is already in use" in result.output
    assert "choose another with --port" in result.output
