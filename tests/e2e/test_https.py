"""Talk from a phone on your network: ``stimm dev --public-host`` serves the console, the API and
LiveKit's signalling over HTTPS (Traefik, a self-signed certificate), so a browser that is not on
the machine gets a secure origin, opens the microphone, joins the call over ``wss://`` and hears
the agent.

127.0.0.1 stands in for the LAN address (Chromium would treat ``http://127.0.0.1`` as secure
too, but not ``http://<LAN address>``: here every URL the browser uses is ``https``/``wss``).
``stimm dev`` runs on free ports, without SIP, beside the suite's other stacks.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import expect

from stimm.stack.process import free_port, port_free
from testkit.audio import SAMPLE_RATE, transcribe, write_wav
from tests.e2e.console import chromium, console_page, nav, shot, sign_in
from tests.support.devstack import DevStack

pytestmark = pytest.mark.e2e

# Records what the page plays: every media element given a stream with audio (livekit-client's
# RoomAudioRenderer attaches the agent's track that way) is also fed into a Web Audio recorder.
RECORD_PLAYED_AUDIO = """
(() => {
  const chunks = [];
  window.__played = { chunks, rate: 0 };
  const srcObject = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "srcObject");
  Object.defineProperty(HTMLMediaElement.prototype, "srcObject", {
    ...srcObject,
    set(stream) {
      srcObject.set.call(this, stream);
      if (!stream || !stream.getAudioTracks().length) return;
      const ctx = new AudioContext();
      window.__played.rate = ctx.sampleRate;
      const recorder = ctx.createScriptProcessor(4096, 1, 1);
      recorder.onaudioprocess = (e) =>
        chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
      ctx.createMediaStreamSource(stream).connect(recorder);
      recorder.connect(ctx.destination);
    },
  });
})();
"""

# The recording as 16-bit PCM, base64.
PLAYED_PCM = """
() => {
  const { chunks, rate } = window.__played;
  const pcm = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
  let i = 0;
  for (const c of chunks) for (const v of c) pcm[i++] = Math.max(-1, Math.min(1, v)) * 32767;
  let bytes = "";
  const u8 = new Uint8Array(pcm.buffer);
  for (let j = 0; j < u8.length; j += 0x8000) {
    bytes += String.fromCharCode(...u8.subarray(j, j + 0x8000));
  }
  return { rate, pcm: btoa(bytes) };
}
"""


def livekit_ports() -> int:
    """A port free now with the two after it: LiveKit's signalling, TCP media + 1, UDP + 2."""
    for _ in range(50):
        start = free_port()
        if port_free(start + 1) and port_free(start + 2, "udp"):
            return start
    raise AssertionError("no three consecutive free ports")


async def test_a_browser_over_https_joins_a_call_and_hears_the_greeting(
    run_dir: Path, tmp_path: Path
) -> None:
    https_port = free_port()
    dev = DevStack(
        run_dir / "https" / ".stimm",
        args=[
            "--public-host=127.0.0.1",
            f"--https-port={https_port}",
            f"--turn-port={free_port()}",
            f"--port={free_port()}",
            f"--livekit-port={livekit_ports()}",
            f"--redis-port={free_port()}",
            f"--llm-port={free_port()}",
            "--no-sip",
        ],
    )
    silence = tmp_path / "silence.wav"  # the microphone: no beeps to interrupt the greeting
    write_wav(silence, np.zeros(SAMPLE_RATE * 5, dtype=np.int16))
    fake_media = (
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={silence}",
    )
    origin = f"https://127.0.0.1:{https_port}"
    sockets: list[str] = []
    dev.start()
    try:
        assert dev.control_plane_url == origin, dev.output
        assert dev.printed.get("llm")  # the rest of the dev stack is up as usual
        async with (
            chromium(fake_media) as browser,
            console_page(
                browser, dev, run_dir / "last-https.png", ignore_https_errors=True
            ) as page,
        ):
            page.on("websocket", lambda ws: sockets.append(ws.url))
            await page.add_init_script(RECORD_PLAYED_AUDIO)
            await sign_in(page, dev.api_key)
            await expect(page.get_by_role("heading", name="Agents", exact=True)).to_be_visible()
            assert await page.evaluate("window.isSecureContext")

            await nav(page, "Talk")
            await page.get_by_role("button", name="Start call").click()
            # the microphone opened (an insecure origin has no navigator.mediaDevices at all)
            await expect(page.get_by_role("button", name="Mute")).to_be_visible(timeout=30_000)
            agent_says = page.get_by_test_id("transcript").locator('[data-speaker="agent"]')
            await expect(agent_says.first).to_contain_text("How can I help", timeout=120_000)
            await expect(page.get_by_test_id("agent-state")).to_have_text(
                "Listening", timeout=30_000
            )
            played = await page.evaluate(PLAYED_PCM)
            await shot(page, "https-talk")
            await page.get_by_role("button", name="Hang up").click()
            await expect(page.get_by_role("heading", name="Call ended")).to_be_visible()
    finally:
        dev.stop()

    assert any(url.startswith(f"wss://127.0.0.1:{https_port}/rtc") for url in sockets), sockets
    pcm = np.frombuffer(base64.b64decode(played["pcm"]), dtype=np.int16)
    heard = transcribe(pcm, int(played["rate"]))
    assert "how can i help" in heard, heard
