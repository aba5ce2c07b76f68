#!/usr/bin/env python3
"""Opens an HTML file in headless Chromium and checks that it renders cleanly.

Usage: report_check.py PAGE.html SHOT.png [--width W] [--height H] [--chromium PATH]
                       [--element SELECTOR OUT.png]

Drives Chromium through the DevTools protocol over a pipe (--remote-debugging-pipe: no port,
no websocket library) so every diagnostic arrives as a typed event instead of log lines to
grep: console messages (Runtime.consoleAPICalled), uncaught exceptions
(Runtime.exceptionThrown), browser-side errors such as failed loads or blocked content
(Log.entryAdded) and every network request (Network.requestWillBeSent). Fails (exit 1) on a
console error/warning/assert, an exception, a Log entry of level error/warning, or any request
other than the page itself; then saves a PNG screenshot of the window and prints one line:
"rendered: N histograms, M threshold lines visible, PNG bytes". Exit 2 on a usage or
Chromium start-up problem. --element also saves the first element matching the CSS selector
(e.g. the report's "details.worst", a worst layer's histogram). Standard library only.
"""
import argparse
import base64
import fcntl
import json
import os
import pathlib
import select
import shutil
import subprocess
import sys
import tempfile
import time

VISIBLE_JS = r"""(() => {
  const hist = document.querySelectorAll('svg.hist').length;
  let shown = 0;
  for (const l of document.querySelectorAll('details[open] svg.hist line.t')) {
    const r = l.getBoundingClientRect();
    if (r.height > 10) shown++;
  }
  return JSON.stringify({hist: hist, lines: shown,
                         height: document.documentElement.scrollHeight});
})()"""


class Cdp:
    def __init__(self, proc, wfd, rfd):
        self.proc, self.wfd, self.rfd = proc, wfd, rfd
        self.buf = b""
        self.next_id = 0
        self.events = []

    def _read_msg(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self.rfd], [], [], left)
            if ready:
                chunk = os.read(self.rfd, 1 << 20)
                if not chunk:
                    raise EOFError("chromium closed the pipe")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=60):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_msg(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, name, timeout):
        deadline = time.monotonic() + timeout
        for m in self.events:
            if m.get("method") == name:
                return m
        while True:
            m = self._read_msg(deadline)
            self.events.append(m)
            if m.get("method") == name:
                return m

    def drain(self, seconds):
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read_msg(deadline))
        except TimeoutError:
            pass


def high_fd(fd):
    """The fd moved above 10, so that the child's dup2 onto 3 and 4 cannot clobber it."""
    h = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return h


def problems(events, page_url):
    out = []
    for m in events:
        meth, p = m.get("method"), m.get("params", {})
        if meth == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning",
                                                                     "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            out.append(f"console.{p['type']}: {text}")
        elif meth == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append("exception: " + d.get("exception", {}).get("description", d.get("text")))
        elif meth == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            e = p["entry"]
            out.append(f"log {e['level']} ({e.get('source')}): {e['text']} {e.get('url', '')}")
        elif meth == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if url != page_url:
                out.append(f"request: {url[:200]}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("shot")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2000)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    ap.add_argument("--element", nargs=2, metavar=("SELECTOR", "OUT"))
    a = ap.parse_args()
    page_url = pathlib.Path(a.page).resolve().as_uri()

    cmd_r, cmd_w = map(high_fd, os.pipe())
    res_r, res_w = map(high_fd, os.pipe())

    def child_fds():
        os.dup2(cmd_r, 3)
        os.dup2(res_w, 4)

    profile = tempfile.mkdtemp(prefix="qc-chromium.")
    try:
        proc = subprocess.Popen(
            [a.chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--hide-scrollbars",
             f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=child_fds, pass_fds=(3, 4, cmd_r, res_w))
    except OSError as e:
        print(f"report_check: cannot start {a.chromium}: {e}", file=sys.stderr)
        return 2
    os.close(cmd_r)
    os.close(res_w)
    cdp = Cdp(proc, cmd_w, res_r)
    try:
        target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        sess = cdp.call("Target.attachToTarget", {"targetId": target,
                                                  "flatten": True})["sessionId"]
        for dom in ("Runtime", "Log", "Network", "Page"):
            cdp.call(dom + ".enable", session=sess)
        cdp.call("Emulation.setDeviceMetricsOverride",
                 {"width": a.width, "height": a.height, "deviceScaleFactor": 1,
                  "mobile": False}, session=sess)
        cdp.events.clear()              # about:blank's own events
        cdp.call("Page.navigate", {"url": page_url}, session=sess)
        cdp.wait_event("Page.loadEventFired", 120)
        cdp.drain(0.5)                  # late console messages
        info = json.loads(cdp.call("Runtime.evaluate", {"expression": VISIBLE_JS,
                                                        "returnByValue": True},
                                   session=sess)["result"]["value"])
        png = base64.b64decode(cdp.call("Page.captureScreenshot", {"format": "png"},
                                        session=sess, timeout=120)["data"])
        part = None
        if a.element:
            js = ("(() => { const e = document.querySelector(%s); if (!e) return null;"
                  " const r = e.getBoundingClientRect(); return JSON.stringify({x: r.left +"
                  " scrollX, y: r.top + scrollY, width: r.width, height: r.height}); })()"
                  % json.dumps(a.element[0]))
            box = cdp.call("Runtime.evaluate", {"expression": js, "returnByValue": True},
                           session=sess)["result"].get("value")
            if box is None:
                print(f"report_check: no element matches {a.element[0]!r}", file=sys.stderr)
                return 1
            clip = dict(json.loads(box), scale=1)
            part = base64.b64decode(cdp.call("Page.captureScreenshot",
                                             {"format": "png", "clip": clip,
                                              "captureBeyondViewport": True},
                                             session=sess, timeout=120)["data"])
        cdp.drain(0.2)
        bad = problems(cdp.events, page_url)
        try:
            cdp.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, EOFError):
            pass
    except (RuntimeError, TimeoutError, EOFError) as e:
        print(f"report_check: chromium: {e}", file=sys.stderr)
        proc.kill()
        return 2
    finally:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    pathlib.Path(a.shot).write_bytes(png)
    if part is not None:
        pathlib.Path(a.element[1]).write_bytes(part)
    for b in bad:
        print(f"report_check: {a.page}: {b}", file=sys.stderr)
    print(f"rendered: {info['hist']} histograms, {info['lines']} threshold lines visible, "
          f"page {info['height']} px, {len(png)} PNG bytes, {len(bad)} console problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
