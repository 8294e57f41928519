"""Headless Chromium driven through the DevTools protocol over a pipe (--remote-debugging-pipe:
commands on fd 3, answers and events on fd 4, each a JSON text ended by a NUL byte), with the
standard library only. A page that long-polls never finishes loading in --dump-dom's sense; here
the test reads the live page whenever it likes, waits on what it shows, and collects every
console error, uncaught exception and failed request the page had."""

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(self, log_path=None):
        self.profile_dir = tempfile.mkdtemp(prefix="swarm-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def child_fds():
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        argv = [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                f"--user-data-dir={self.profile_dir}", "--remote-debugging-pipe", "--window-size=1280,900",
                "about:blank"]
        self._stderr = open(log_path or os.devnull, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
                                     preexec_fn=child_fds, pass_fds=(3, 4, to_browser_read, from_browser_write))
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._next_id = 0
        self._answers = {}
        self._answered = threading.Condition()
        self.events = queue.Queue()
        self.problems = []  # console errors, exceptions, failed loads: one line each
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = None

    def _read(self):
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self._answered:
                    self._answers[None] = "closed"
                    self._answered.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._answered:
                        self._answers[message["id"]] = message
                        self._answered.notify_all()
                else:
                    self._note(message)
                    self.events.put(message)

    def _note(self, message):
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.problems.append(f"Uncaught: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
            self.problems.append(f"CONSOLE {params.get('type')}: {args}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.problems.append(f"LOG {entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")

    def call(self, method, params=None, session=True, timeout=60):
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            command["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._answered:
            while self._next_id not in self._answers:
                if None in self._answers:
                    raise AssertionError(f"chromium closed its pipe during {method}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"chromium did not answer {method}")
                self._answered.wait(left)
            answer = self._answers.pop(self._next_id)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def open(self, url):
        """A new tab on `url`, with console, exceptions and network errors collected."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"evaluate {expression!r}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def text(self):
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def html(self):
        return self.evaluate("document.documentElement.outerHTML") or ""

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=10)
        except AssertionError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._stderr.close()
        shutil.rmtree(self.profile_dir, True)
