"""A real headless Chromium driven over the DevTools protocol on a pipe (no network port).

Why not only the command line (`--screenshot`, `--dump-dom`)? Headless Chromium lays a
page out at least 500 px wide whatever `--window-size` says, and crops the screenshot to
the window: a 390 px screenshot then shows the left of a 500 px layout and hides any
overflow. Device emulation sets a real 390 px viewport, and `Runtime.evaluate` measures
the page as laid out without changing it (DevTools evaluation is not subject to the
page's Content-Security-Policy, so the page keeps forbidding scripts).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


class Browser:
    def __init__(self, profile: Path):
        # the DevTools pipe is fds 3 (commands to Chromium) and 4 (replies); raise the fds
        # we pass above 4 first, so that moving them into place clobbers none of them
        cmd_r, cmd_w = os.pipe()
        out_r, out_w = os.pipe()
        a = _above(cmd_r, 10)
        b = _above(out_w, 10)
        os.close(cmd_r)
        os.close(out_w)

        def child():
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=child, pass_fds=(3, 4, a, b), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(a)
        os.close(b)
        self._w = os.fdopen(cmd_w, "wb", buffering=0)
        self._r = os.fdopen(out_r, "rb", buffering=0)
        self._buf = b""
        self._id = 0
        self._events: list[dict] = []

    def _read(self) -> dict:
        while b"\0" not in self._buf:
            chunk = self._r.read(1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, session: str | None = None, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self._w.write(json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self._events.append(reply)

    def wait_for(self, event: str, session: str) -> dict:
        for i, e in enumerate(self._events):
            if e.get("method") == event and e.get("sessionId") == session:
                return self._events.pop(i)
        while True:
            msg = self._read()
            if msg.get("method") == event and msg.get("sessionId") == session:
                return msg
            self._events.append(msg)

    def open(self, url: str, width: int, height: int = 900, *, mobile: bool = False, media: str = "screen") -> "Tab":
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride", session, width=width, height=height,
                  deviceScaleFactor=1, mobile=mobile)
        self.send("Emulation.setEmulatedMedia", session, media=media)
        self.send("Page.enable", session)
        self.send("Page.navigate", session, url=url)
        self.wait_for("Page.loadEventFired", session)
        return Tab(self, session, target)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._w.close()
        self._r.close()


def _above(fd: int, low: int) -> int:
    """A duplicate of `fd` numbered at least `low`."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD, low)


class Tab:
    def __init__(self, browser: Browser, session: str, target: str):
        self.b, self.s, self.target = browser, session, target

    def __enter__(self) -> "Tab":
        return self

    def __exit__(self, *exc) -> None:
        self.b.send("Target.closeTarget", targetId=self.target)

    def evaluate(self, expression: str):
        r = self.b.send("Runtime.evaluate", self.s, expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"])
        return r["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """The whole page, at the emulated width."""
        w, h = self.evaluate("[document.documentElement.clientWidth, document.documentElement.scrollHeight]")
        shot = self.b.send("Page.captureScreenshot", self.s, format="png", captureBeyondViewport=True,
                           clip={"x": 0, "y": 0, "width": w, "height": min(h, 16000), "scale": 1})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def pdf(self, path: Path) -> Path:
        res = self.b.send("Page.printToPDF", self.s, printBackground=False, paperWidth=8.27, paperHeight=11.69)
        path.write_bytes(base64.b64decode(res["data"]))
        return path


# What the tests measure in the laid-out page (a JSON-able dict).
MEASURE = r"""
(() => {
  const doc = document.documentElement, vw = doc.clientWidth;
  const out = {vw, scrollWidth: doc.scrollWidth, overflow: [], tallPaths: [], charts: [],
               tallHeaders: []};
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                     (el.getAttribute('class') ? '.' + el.getAttribute('class').split(' ').join('.') : '');
  for (const el of document.body.querySelectorAll('*')) {
    // a table may scroll inside its own box (.table-wrap) on screen; the box itself must fit
    const wrap = el.closest('.table-wrap');
    if (wrap && wrap !== el && getComputedStyle(wrap).overflowX !== 'visible') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > vw + 0.5 || r.left < -0.5) out.overflow.push(name(el) + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
  for (const el of document.querySelectorAll('.path')) {
    const r = el.getBoundingClientRect(), lh = parseFloat(getComputedStyle(el).fontSize) * 1.6;
    if (r.height > lh) out.tallPaths.push(el.textContent + ' ' + r.height);
  }
  for (const svg of document.querySelectorAll('svg')) {
    const r = svg.getBoundingClientRect();
    if (r.width === 0) continue;  // the other drawing of the chart (wide or narrow) is hidden
    const scale = r.width / svg.viewBox.baseVal.width;
    let minFont = 1e9;
    for (const t of svg.querySelectorAll('text')) {
      const px = parseFloat(getComputedStyle(t).fontSize) * scale;
      minFont = Math.min(minFont, px);
    }
    out.charts.push({id: svg.closest('figure') ? svg.closest('figure').id : '', width: r.width,
                     viewBox: svg.viewBox.baseVal.width, left: r.left, right: r.right, minFont});
  }
  for (const th of document.querySelectorAll('th')) {
    // the label's own lines (the cell is as tall as its row's tallest label)
    const range = document.createRange();
    range.selectNodeContents(th);
    const lh = parseFloat(getComputedStyle(th).lineHeight);
    const lines = Math.round(range.getBoundingClientRect().height / lh);
    if (lines > 3) out.tallHeaders.push(th.textContent + ' ' + lines);
  }
  return out;
})()
"""
