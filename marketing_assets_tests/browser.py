"""Headless Chromium over the DevTools protocol, shared by the end-to-end tests and the dashboards benchmark.

No browser automation package: Chromium's own DevTools endpoint driven with ``websockets`` (a
dagster-webserver dependency). ``CdpBrowser`` navigates, waits until a JavaScript condition holds in the new
document, evaluates, clicks and takes screenshots; ``ink_share`` tells a drawn page from a blank one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path

# Loopback only: never through an HTTP(S)_PROXY from the environment.
LOOPBACK_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-proxy-server",
    "--window-size=1600,1000",
]


def killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_pixels(png: Path):
    """RGB(A) pixels of a non-interlaced 8-bit truecolour PNG as an (h, w, channels) uint8 array."""
    import numpy as np

    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
    pos, idat = 8, bytearray()
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unsupported PNG {depth=} {colour=} {interlace=}"
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(bytes(idat)), dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height + 1, stride), dtype=np.uint8)  # row 0: the zero row above the image
    for y in range(height):
        kind, line, up = raw[y, 0], raw[y, 1:], out[y]
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: running sum per channel
            cur = (np.cumsum(line.reshape(width, bpp).astype(np.uint32), axis=0) % 256).astype(np.uint8).reshape(-1)
        elif kind == 2:  # Up
            cur = line + up
        else:  # Average / Paeth depend on the decoded left neighbour: byte by byte
            cur_l, line_l, up_l = bytearray(stride), line.tolist(), up.tolist()
            for i in range(stride):
                a = cur_l[i - bpp] if i >= bpp else 0
                b = up_l[i]
                if kind == 3:
                    cur_l[i] = (line_l[i] + ((a + b) >> 1)) & 0xFF
                else:
                    c = up_l[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur_l[i] = (line_l[i] + pred) & 0xFF
            cur = np.frombuffer(bytes(cur_l), dtype=np.uint8)
        out[y + 1] = cur
    return out[1:].reshape(height, width, bpp)


def ink_share(png: Path) -> float:
    """Share of pixels that differ clearly from the most common colour (the page background)."""
    import numpy as np

    px = png_pixels(png)[..., :3].astype(np.int16)
    flat = px.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return float((np.abs(flat - background).sum(axis=1) > 24).mean())


class CdpBrowser:
    """Headless chromium driven over the DevTools protocol: navigate, wait for the DOM, screenshot."""

    def __init__(self, chromium: str, timeout: float = 60):
        from websockets.sync.client import connect

        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="e2e-cdp-")
        self.proc = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            port_file = Path(self.profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
                assert time.monotonic() < deadline and self.proc.poll() is None, "chromium DevTools endpoint did not come up"
                time.sleep(0.05)
            devtools = int(port_file.read_text().splitlines()[0])
            with LOOPBACK_HTTP.open(f"http://127.0.0.1:{devtools}/json/list", timeout=10) as r:
                page = next(t for t in json.load(r) if t["type"] == "page")
            self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, proxy=None, open_timeout=30)
        except BaseException:
            self.close()
            raise
        self.ids = iter(range(1, 1 << 30))
        self.call("Emulation.setDeviceMetricsOverride", width=1600, height=1000, deviceScaleFactor=1, mobile=False)

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method: str, **params) -> dict:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=self.timeout))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def load(self, url: str, condition_js: str, reload: bool = False) -> float:
        """Navigate (or reload) and poll every 50 ms until ``condition_js`` holds in the new document; seconds."""
        self.call("Runtime.evaluate", expression="window.__e2eOldDocument = true")
        t0 = time.monotonic()
        if reload:
            self.call("Page.reload", ignoreCache=False)
        else:
            self.call("Page.navigate", url=url)
        probe = f"!window.__e2eOldDocument && document.readyState !== 'loading' && ({condition_js})"
        while time.monotonic() - t0 < self.timeout:
            try:
                value = self.call("Runtime.evaluate", expression=probe, returnByValue=True)["result"].get("value")
            except RuntimeError:  # no execution context while the document is swapped
                value = None
            if value is True:
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError(f"{url}: not drawn within {self.timeout} s ({condition_js})")

    def screenshot(self, png: Path) -> None:
        import base64

        png.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def evaluate(self, js: str):
        """Value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{js[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, condition_js: str, what: str) -> float:
        """Poll every 50 ms until ``condition_js`` holds in the current document; seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.timeout:
            try:
                if self.evaluate(condition_js) is True:
                    return time.monotonic() - t0
            except RuntimeError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{what}: not true within {self.timeout} s ({condition_js})")

    def click(self, x: float, y: float, button: str = "left") -> None:
        """A real mouse click at page coordinates (``button="right"`` opens context menus)."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button=button if kind != "mouseMoved" else "none",
                      clickCount=1 if kind != "mouseMoved" else 0)
