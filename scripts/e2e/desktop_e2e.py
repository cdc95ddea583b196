#!/usr/bin/env python3
"""The desktop app end to end, in a real window, over plain W3C WebDriver (tauri-driver in
front of WebKitWebDriver). Run by scripts/desktop-e2e.sh inside Xvfb and a D-Bus session; reads
its settings from the environment that script sets. Fails loudly, with a screenshot."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

DRIVER = os.environ.get("TAURI_DRIVER_URL", "http://127.0.0.1:4444")
BIN = os.environ["HANGAR_DESKTOP_BIN"]
HOME = os.environ["HANGAR_HOME"]
OUT = os.environ["E2E_OUT"]
PROXY = int(os.environ["E2E_PROXY_PORT"])
API = int(os.environ["E2E_API_PORT"])
UI = os.environ.get("E2E_UI", "engine")  # engine: ui/ served by the engine; builtin: the shell's pages
HERE = os.path.dirname(os.path.abspath(__file__))

sid = None
shots = 0


def log(msg):
    print(f"desktop-e2e: {msg}", flush=True)


def screenshot(name):
    """The whole display: the windows and the tray. Taken after a moment, as Xvfb paints after
    the DOM changed. (WebDriver's own screenshot command brings WebKitWebDriver down here.)"""
    global shots
    shots += 1
    time.sleep(1)
    path = os.path.join(OUT, f"{shots:02d}-{name}.png")
    subprocess.run(["import", "-window", "root", path], check=False)
    log(f"screenshot {path}")


def fail(msg):
    print(f"desktop-e2e: FAILED: {msg}", file=sys.stderr, flush=True)
    try:
        screenshot("failure")
    finally:
        sys.exit(1)


def http(method, url, body=None, headers=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        raise RuntimeError(f"{method} {url}: {e}") from e


def wd(method, path, body=None):
    status, text = http(method, f"{DRIVER}{path}", body)
    try:
        value = json.loads(text).get("value") if text else None
    except json.JSONDecodeError:
        fail(f"WebDriver {method} {path}: {status} {text[:300]}")
    if status >= 400:
        raise RuntimeError(f"WebDriver {method} {path}: {status} {json.dumps(value)[:400]}")
    return value


def s(path):
    return f"/session/{sid}{path}"


def wait(what, fn, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # keep trying until the deadline; report the last reason
            last = e
        time.sleep(0.1)
    fail(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last})" if last else ""))


def find(css):
    try:
        v = wd("POST", s("/element"), {"using": "css selector", "value": css})
    except RuntimeError:
        return None
    return next(iter(v.values())) if v else None


def click(css):
    el = wait(css, lambda: find(css))
    wd("POST", s(f"/element/{el}/click"), {})


def js(script, *args):
    return wd("POST", s("/execute/sync"), {"script": script, "args": list(args)})


def invoke(cmd, args=None):
    """Call a shell command from the current window, as its page does."""
    script = (
        "const done = arguments[arguments.length - 1];"
        "window.__TAURI__.core.invoke(arguments[0], arguments[1])"
        ".then(v => done({ok: v}), e => done({err: String(e)}));"
    )
    r = wd("POST", s("/execute/async"), {"script": script, "args": [cmd, args or {}]})
    if "err" in r:
        raise RuntimeError(f"{cmd}: {r['err']}")
    return r.get("ok")


def handles():
    return wd("GET", s("/window/handles"))


def switch(handle):
    wd("POST", s("/window"), {"handle": handle})


def x_windows(title, visible=True):
    args = ["xdotool", "search"] + (["--onlyvisible"] if visible else []) + ["--name", title]
    r = subprocess.run(args, capture_output=True, text=True)
    return [w for w in r.stdout.split()]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return ") Z " not in f.read()
    except FileNotFoundError:
        return False


def group_members(pgid):
    r = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    return [p for p in r.stdout.split() if alive(p)]


def proxy_get(path):
    return http("GET", f"http://127.0.0.1:{PROXY}{path}", timeout=30)


def api_apps():
    token = open(os.path.join(HOME, "token")).read().strip()
    status, text = http("GET", f"http://127.0.0.1:{API}/api/v1/apps",
                        headers={"Authorization": f"Bearer {token}"})
    if status != 200:
        raise RuntimeError(f"API {status}: {text[:200]}")
    return json.loads(text)["apps"]


def main():
    global sid
    log(f"starting {BIN} through tauri-driver")
    v = wd("POST", "/session", {"capabilities": {"alwaysMatch": {"tauri:options": {"application": BIN}}}})
    sid = v["sessionId"]
    info = json.load(open(os.path.join(HOME, "engine.json")))
    desktop_pid = info["pid"]
    log(f"the desktop app runs as pid {desktop_pid}; its engine listens on {info['api']}")

    # 1. The window lists the apps.
    if UI == "engine":
        wait("the main window to load the engine's control panel",
             lambda: (wd("GET", s("/url")) or "").startswith(f"http://127.0.0.1:{API}/"))
    wait("the main window to list main and blog",
         lambda: find('tr[data-app="main"]') and find('tr[data-app="blog"]'))
    shell = invoke("shell_info")
    log(f"the window shows the {shell['ui']['kind']} control panel")
    if shell["ui"]["kind"] != UI:
        fail(f"expected the {UI} control panel in the window, got {shell['ui']}")
    if shell["mode"] != "in-process":
        fail(f"expected the engine hosted in-process, got {shell['mode']}")
    if not shell["tray"]["available"]:
        fail(f"expected a tray (trayer runs): {shell['tray']['why']}")
    main_handle = wd("GET", s("/window"))
    screenshot("main-window")

    # 2. Starting an app from the window works.
    click('tr[data-app="blog"] button[aria-label="Start blog"]')
    wait("blog to show running", lambda: find('tr[data-app="blog"] [data-status="running"]'))
    status, _ = proxy_get("/_app/blog/api/info")
    if status != 200:
        fail(f"blog through the proxy answered {status}")
    screenshot("blog-running")

    # 3. The log window opens and shows a line made by requesting the app.
    marker = f"e2e-marker-{os.getpid()}"
    click('tr[data-app="blog"] [aria-label="Logs of blog"]')
    wait("a second window", lambda: len(handles()) == 2)
    logs_handle = next(h for h in handles() if h != main_handle)
    proxy_get(f"/_app/blog/{marker}")
    switch(logs_handle)
    wait("the marker line in the log window",
         lambda: marker in (js("const e = document.querySelector('[data-testid=\"log-lines\"]');"
                               " return e ? e.textContent : ''") or ""))
    screenshot("log-window")
    # "Logs" again reuses the window.
    switch(main_handle)
    if find('tr[data-app="blog"]') is None:
        fail("the main window no longer shows the apps after Logs was clicked")
    click('tr[data-app="blog"] [aria-label="Logs of blog"]')
    time.sleep(0.5)
    if len(handles()) != 2:
        fail(f"a second Logs click opened another window: {handles()}")
    switch(logs_handle)

    # 4. Closing the main window leaves the process running and the proxy answering.
    mains = x_windows("^Hangar$")
    if not mains:
        fail("the main window is not visible on the display")
    for w in mains:
        subprocess.run([sys.executable, os.path.join(HERE, "x11_close.py"), w], check=True)
    wait("the main window to be hidden", lambda: not x_windows("^Hangar$"))
    if not alive(desktop_pid):
        fail("the desktop app exited when its window closed")
    status, _ = proxy_get("/_app/blog/api/info")
    if status != 200:
        fail(f"after closing the window, blog through the proxy answered {status}")
    screenshot("main-window-closed")
    model = json.dumps(invoke("tray_model"))
    if "blog \\u2014 running" not in model and "blog — running" not in model:
        fail(f"the tray menu does not show blog running: {model[:400]}")

    # 5. Hidden for a while, the main webview is released; a second launch brings it back.
    wait("the main webview to be released",
         lambda: invoke("shell_info")["main_window"] == "released", timeout=60)
    second = subprocess.run([BIN], capture_output=True, text=True, timeout=60)
    if second.returncode != 0:
        fail(f"a second launch failed ({second.returncode}): {second.stderr[-500:]}")
    wait("the main window to come back", lambda: x_windows("^Hangar$"))
    wait("a new main webview", lambda: len(handles()) == 2)
    main_handle = next(h for h in handles() if h != logs_handle)
    switch(main_handle)
    wait("the rebuilt window to list blog running",
         lambda: find('tr[data-app="blog"] [data-status="running"]'))
    if not alive(desktop_pid):
        fail("the first instance exited")
    screenshot("main-window-rebuilt")

    # 6. Quitting leaves no app process behind.
    apps = api_apps()
    pids = [a["pid"] for a in apps if a.get("pid")]
    if len(pids) < 2:
        fail(f"expected main and blog running before the quit, got {[(a['name'], a['status']) for a in apps]}")
    log(f"quitting; app process groups {pids}")
    script = ("const done = arguments[arguments.length - 1];"
              "window.__TAURI__.core.invoke('tray_action', {id: 'quit'}); done(true);")
    wd("POST", s("/execute/async"), {"script": script, "args": []})
    wait("the desktop app to exit", lambda: not alive(desktop_pid), timeout=90)
    screenshot("after-quit")
    left = {p: group_members(p) for p in pids}
    left = {p: m for p, m in left.items() if m or alive(p)}
    if left:
        fail(f"processes left behind after quitting: {left}")
    if os.path.exists(os.path.join(HOME, "engine.json")):
        fail("engine.json is still there: the engine did not shut down cleanly")
    try:
        wd("DELETE", s(""))
    except Exception:
        pass
    attach()
    log("PASSED: window lists apps, start from the window, log window with a live line, "
        "close to tray with the proxy serving, webview released and rebuilt, single instance, "
        "quit with nothing left, attach to a running engine")


def attach():
    """7. An engine already runs on the home (`hangar serve`): the app attaches to it, and its
    Quit stops that engine and every app too."""
    global sid
    home2 = os.environ["E2E_HOME2"]
    with open(os.path.join(OUT, "serve.log"), "w") as out:
        serve = subprocess.Popen([os.environ["E2E_HANGAR_BIN"], "--home", home2, "serve"],
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        wait("hangar serve on the second home", lambda: os.path.exists(os.path.join(home2, "engine.json")))
        v = wd("POST", "/session", {"capabilities": {"alwaysMatch": {"tauri:options": {
            "application": BIN, "args": ["--home", home2]}}}})
        sid = v["sessionId"]
        wait("the attached window to list main running",
             lambda: find('tr[data-app="main"] [data-status="running"]'))
        info = invoke("shell_info")
        if info["mode"] != "attached":
            fail(f"expected to attach to the running engine, got {info['mode']}")
        if info["pid"] == serve.pid:
            fail("the shell claims the engine's pid")
        token = open(os.path.join(home2, "token")).read().strip()
        api = json.load(open(os.path.join(home2, "engine.json")))["api"]
        status, text = http("GET", f"http://{api}/api/v1/apps", headers={"Authorization": f"Bearer {token}"})
        pids = [a["pid"] for a in json.loads(text)["apps"] if a.get("pid")]
        screenshot("attached")
        script = ("const done = arguments[arguments.length - 1];"
                  "window.__TAURI__.core.invoke('tray_action', {id: 'quit'}); done(true);")
        wd("POST", s("/execute/async"), {"script": script, "args": []})
        wait("the attached app to exit", lambda: not alive(info["pid"]), timeout=90)
        try:
            serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            fail("Quit in the attached app did not stop the engine it attached to")
        left = {p: group_members(p) for p in pids if group_members(p) or alive(p)}
        if left:
            fail(f"processes left behind after quitting the attached app: {left}")
        try:
            wd("DELETE", s(""))
        except Exception:
            pass
    finally:
        if serve.poll() is None:
            serve.terminate()
            serve.wait(timeout=60)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # one loud line (and a screenshot), not a bare traceback
        fail(f"{type(e).__name__}: {e}")
