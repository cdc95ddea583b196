#!/usr/bin/env python3
"""The desktop app end to end, in a real window, over plain W3C WebDriver (tauri-driver in
front of WebKitWebDriver), and its tray through the session bus exactly as a desktop panel uses
it (StatusNotifierItem + com.canonical.dbusmenu, see sni.py). Run by scripts/desktop-e2e.sh inside
Xvfb and a D-Bus session where sni.py's watcher runs; reads its settings from the environment
that script sets. Fails loudly, with a screenshot."""

import json
import re
import os
import resource
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sni  # noqa: E402  (python3-gi: the session bus)
from procs import alive, tree as process_tree  # noqa: E402

DRIVER = os.environ.get("TAURI_DRIVER_URL", "http://127.0.0.1:4444")
BIN = os.environ["HANGAR_DESKTOP_BIN"]
HOME = os.environ["HANGAR_HOME"]
OUT = os.environ["E2E_OUT"]
PROXY = int(os.environ["E2E_PROXY_PORT"])
API = int(os.environ["E2E_API_PORT"])
HANGAR = os.environ["E2E_HANGAR_BIN"]
UI = os.environ.get("E2E_UI", "engine")  # engine: ui/ served by the engine; builtin: the shell's pages
HERE = os.path.dirname(os.path.abspath(__file__))
# The installed package's .desktop entry (scripts/test-deb.sh INSTALL=1): start Hangar through it.
ENTRY = os.environ.get("E2E_DESKTOP_ENTRY")

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


def wd(method, path, body=None, safe=False):
    """One WebDriver command. `safe`: asking it twice does no harm (a GET always is)."""
    for attempt in range(3):
        try:
            status, text = http(method, f"{DRIVER}{path}", body)
            break
        except RuntimeError as e:
            # tauri-driver forwards over a kept-alive connection to WebKitWebDriver, which may
            # have closed it meanwhile ("Remote end closed connection without response"): a
            # command that does no harm twice (a read, a switch of window) is asked again;
            # anything else fails at once (it may have acted).
            if not (safe or method == "GET") or attempt == 2:
                raise
            log(f"WebDriver {method} {path}: {e}; asking again")
            time.sleep(0.3)
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
        v = wd("POST", s("/element"), {"using": "css selector", "value": css}, safe=True)
    except RuntimeError:
        return None
    return next(iter(v.values())) if v else None


def click(css):
    el = wait(css, lambda: find(css))
    wd("POST", s(f"/element/{el}/click"), {})


def type_into(css, text):
    """Replace the text of the input `css`, keystroke by keystroke (the page sees input events)."""
    el = wait(css, lambda: find(css))
    wd("POST", s(f"/element/{el}/clear"), {})
    wd("POST", s(f"/element/{el}/value"), {"text": text})


def js(script, *args):
    return wd("POST", s("/execute/sync"), {"script": script, "args": list(args)})


# Shell commands that only read: asked again if the WebDriver connection drops (see `wd`).
READ_ONLY_COMMANDS = {"shell_info", "status_rules"}


def invoke(cmd, args=None):
    """Call a shell command from the current window, as its page does."""
    script = (
        "const done = arguments[arguments.length - 1];"
        "window.__TAURI__.core.invoke(arguments[0], arguments[1])"
        ".then(v => done({ok: v}), e => done({err: String(e)}));"
    )
    r = wd("POST", s("/execute/async"), {"script": script, "args": [cmd, args or {}]},
           safe=cmd in READ_ONLY_COMMANDS)
    if "err" in r:
        raise RuntimeError(f"{cmd}: {r['err']}")
    return r.get("ok")


def handles():
    return wd("GET", s("/window/handles"))


def switch(handle):
    wd("POST", s("/window"), {"handle": handle}, safe=True)


def x_windows(title, visible=True):
    args = ["xdotool", "search"] + (["--onlyvisible"] if visible else []) + ["--name", title]
    r = subprocess.run(args, capture_output=True, text=True)
    return [w for w in r.stdout.split()]


def group_members(pgid):
    r = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    return [p for p in r.stdout.split() if alive(p)]


def close_windows(title):
    """Close every visible window whose title matches, as a window manager's close button does."""
    for w in x_windows(title):
        subprocess.run([sys.executable, os.path.join(HERE, "x11_close.py"), w], check=True)


def nothing_left(pids, after, win=None, home=HOME):
    """After a quit: fail if the window process `win`, any of the app processes `pids` (or
    anything of their groups) still runs, or the engine of `home` did not shut down cleanly."""
    if win and alive(win):
        fail(f"the window process {win} outlived the desktop app ({after})")
    left = {p: group_members(p) for p in pids}
    left = {p: m for p, m in left.items() if m or alive(p)}
    if left:
        fail(f"processes left behind after {after}: {left}")
    if os.path.exists(os.path.join(home, "engine.json")):
        fail(f"engine.json is still there after {after}: the engine did not shut down cleanly")


def close_to_quit(p, pids, when, win=None):
    """Where no tray is, closing the main window quits: desktop app `p` exits, nothing is left."""
    close_windows("^Hangar$")
    try:
        p.wait(timeout=90)
    except subprocess.TimeoutExpired:
        fail(f"{when}, closing the window did not quit the desktop app")
    nothing_left(pids, f"closing the window {when}", win=win)


def low_open_files_limit():
    """For a Popen's preexec_fn: the soft limit on open files a desktop session often gives
    (1024), below the hard one, which Hangar must lift for its proxy."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))


def check_open_files_lifted(pid, what):
    """The process started under low_open_files_limit() runs with the soft limit at the hard."""
    limits = open(f"/proc/{pid}/limits").read()
    m = re.search(r"Max open files\s+(\d+)\s+(\d+)", limits)
    if not m or m.group(1) != m.group(2):
        fail(f"{what} did not lift its soft limit on open files to the hard one: "
             f"{m.group(0) if m else limits}")


def proxy_get(path):
    return http("GET", f"http://127.0.0.1:{PROXY}{path}", timeout=30)


def api_apps():
    token = open(os.path.join(HOME, "token")).read().strip()
    status, text = http("GET", f"http://127.0.0.1:{API}/api/v1/apps",
                        headers={"Authorization": f"Bearer {token}"})
    if status != 200:
        raise RuntimeError(f"API {status}: {text[:200]}")
    return json.loads(text)["apps"]


def app_status(name, apps=None):
    return next((a["status"] for a in (apps or api_apps()) if a["name"] == name), None)


def cli(*args):
    """The engine's CLI on the same home, as a user in a terminal would run it."""
    r = subprocess.run([HANGAR, *args], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        fail(f"hangar {' '.join(args)} failed ({r.returncode}): {r.stderr[-500:]}")
    return r.stdout


# The tray, through the session bus: the item the watcher has for a process, its menu, clicks.

def bus_pid(name):
    (pid,) = sni._call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                       "GetConnectionUnixProcessID", sni.GLib.Variant("(s)", (name,)), "(u)")
    return pid


def tray_of(pid):
    """The menu of the StatusNotifierItem that process `pid` registered with the watcher."""
    def find_item():
        for item in sni.items():
            if bus_pid(item[0]) == pid:
                return item
        return None
    item = wait(f"pid {pid}'s tray icon to register with the StatusNotifier watcher", find_item)
    return sni.menu_of(item)


def tray_layout(menu):
    return sni.layout(menu)


def tray_text(menu):
    return "\n".join(sni.labels(tray_layout(menu)))


def tray_wait(menu, what, pred, timeout=30):
    """Wait until the menu as a panel reads it satisfies pred(layout)."""
    last = {}

    def ok():
        last["l"] = tray_layout(menu)
        return pred(last["l"])
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if ok():
                return last["l"]
        except Exception as e:  # the menu may be rebuilt between two calls
            last["e"] = e
        time.sleep(0.2)
    shown = "\n".join(sni.labels(last["l"])) if "l" in last else f"unreadable: {last.get('e')}"
    fail(f"timed out after {timeout} s waiting for the tray menu to show {what}; it shows:\n{shown}")


def tray_click(menu, *path):
    """Open the menu, follow `path` by labels (submenus opened on the way) and click the entry,
    as a user does in the panel."""
    def entry():
        node = tray_layout(menu)
        for i in range(len(path)):
            e = sni.find(node, *path[: i + 1])
            if e is None:
                return None
            if i < len(path) - 1:
                sni.about_to_show(menu, e["id"])
        e = sni.find(tray_layout(menu), *path)
        return e if e and e["enabled"] else None
    e = wait(f"the tray entry {' > '.join(path)} (enabled)", entry)
    log(f"tray: clicking {' > '.join(path)} (dbusmenu id {e['id']})")
    sni.click(menu, e["id"])


def app_label_has(layout, display, status):
    e = sni.find(layout, f"~{display} — ")
    return e is not None and e["label"].endswith(f"— {status}")


def screen_green_pixels():
    """How many pixels of the screen are clearly green (green 40 above red and blue): the
    control panel draws running apps in green (`--ok` in ui/src/app.css, `.s-running` in the
    shell's built-in pages), and nothing else on this screen is green."""
    shot = subprocess.run(["import", "-window", "root", "-depth", "8", "ppm:-"], capture_output=True, timeout=30)
    if shot.returncode != 0:
        return 0
    hist = subprocess.run(["convert", "ppm:-", "-format", "%c", "histogram:info:-"],
                          input=shot.stdout, capture_output=True, timeout=30)
    n = 0
    for line in hist.stdout.decode("utf-8", "replace").splitlines():
        m = re.match(r"\s*(\d+):\s*\(\s*(\d+),\s*(\d+),\s*(\d+)", line)
        if m:
            count, r, g, b = (int(x) for x in m.groups())
            if g - max(r, b) >= 40:
                n += count
    return n


def webkit_processes(pid):
    """WebKit's processes anywhere below `pid` (under its window process)."""
    return [(p, exe) for p, _, exe in process_tree(pid) if exe.startswith("WebKit")]


def window_process(desktop_pid):
    """The desktop app's window process (`hangar-desktop --window`, its child), if one runs."""
    return next((p for p, parent, exe in process_tree(desktop_pid)
                 if parent == desktop_pid and exe == "hangar-desktop" and alive(p)), None)


def gl_in(pid):
    """The GL driver libraries (Mesa's, libLLVM) process `pid` maps: WebKit loads them with a
    window; the desktop app itself must never (its windows live in the window process)."""
    try:
        maps = open(f"/proc/{pid}/maps").read()
    except OSError:
        return []
    return sorted({os.path.basename(l.split()[-1]) for l in maps.splitlines()
                   if re.search(r"libLLVM|_dri\.so|libgallium|libEGL_mesa", l)})


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
    if not shell["tray"]["available"] or "StatusNotifier" not in shell["tray"]["why"]:
        fail(f"expected the tray found through the StatusNotifier watcher: {shell['tray']}")
    # The windows live in a child process of the desktop app; WebKit and GL load there only.
    win_pid = shell.get("window_pid")
    if shell["pid"] != desktop_pid or win_pid in (None, desktop_pid) or window_process(desktop_pid) != win_pid:
        fail(f"expected the windows in a child process of {desktop_pid}: shell_info says pid "
             f"{shell['pid']}, window_pid {win_pid}; children {process_tree(desktop_pid)}")
    if not gl_in(win_pid):
        log("note: the window process maps no Mesa GL library (a display with its own driver?)")
    if gl_in(desktop_pid):
        fail(f"the desktop app itself maps GL libraries: {gl_in(desktop_pid)}")
    log(f"windows in process {win_pid} (GL there: {gl_in(win_pid)}); none in {desktop_pid}")
    main_handle = wd("GET", s("/window"))
    screenshot("main-window")

    # The tray icon is a StatusNotifierItem with a dbusmenu, as a panel finds it; its menu
    # lists the apps with their states.
    menu = tray_of(desktop_pid)
    log(f"the tray menu is {menu[0]} {menu[1]}")
    # blog starts on a visit and has not had one: asleep (a visit starts it), not stopped.
    tray_wait(menu, "blog asleep and main running",
              lambda l: app_label_has(l, "The blog", "asleep") and sni.find(l, "~ — running"))
    for entry in ("Open Hangar", "Start all", "Stop all", "Quit Hangar"):
        if sni.find(tray_layout(menu), entry) is None:
            fail(f"the tray menu has no {entry!r}:\n{tray_text(menu)}")

    # 2. Starting an app from the window works.
    click('tr[data-app="blog"] button[aria-label="Start blog"]')
    wait("blog to show running", lambda: find('tr[data-app="blog"] [data-status="running"]'))
    status, _ = proxy_get("/_app/blog/api/info")
    if status != 200:
        fail(f"blog through the proxy answered {status}")
    screenshot("blog-running")
    tray_wait(menu, "blog running (started from the window)",
              lambda l: app_label_has(l, "The blog", "running"))

    # 2b. The tray's own entries act on the engine, and its labels follow the engine's events
    # whoever made them (the window, the tray, the CLI).
    tray_click(menu, "~The blog — ", "Stop")
    wait("the engine to report blog stopped (tray Stop)", lambda: app_status("blog") == "stopped")
    tray_wait(menu, "blog stopped", lambda l: app_label_has(l, "The blog", "stopped"))
    wait("the window to show blog stopped", lambda: find('tr[data-app="blog"] [data-status="stopped"]'))
    cli("start", "blog")
    tray_wait(menu, "blog running (started from the CLI)",
              lambda l: app_label_has(l, "The blog", "running"))
    tray_click(menu, "Stop all")
    wait("the engine to report every app stopped (tray Stop all)",
         lambda: all(a["status"] == "stopped" for a in api_apps()))
    tray_wait(menu, "every app stopped", lambda l: app_label_has(l, "The blog", "stopped")
              and not sni.find(l, "~ — running"))
    tray_click(menu, "~The blog — ", "Start")
    wait("the engine to report blog running (tray Start)", lambda: app_status("blog") == "running")
    tray_click(menu, "Start all")
    wait("the engine to report every app running (tray Start all)",
         lambda: all(a["status"] == "running" for a in api_apps()))
    status, _ = proxy_get("/_app/blog/api/info")
    if status != 200:
        fail(f"blog, started from the tray, answered {status} through the proxy")
    wait("the window to show blog running", lambda: find('tr[data-app="blog"] [data-status="running"]'))

    # 2c. As a new user: a sub-app made with the window's form, then started from the window,
    # answers through the proxy and appears in the tray.
    if UI == "engine":
        click('[data-testid="new-app"]')
        type_into("#f-name", "shop")
        wait("the form to accept the name", lambda: "Available" in (js(
            "const e = document.querySelector('[data-testid=\"name-message\"]');"
            " return e ? e.textContent : ''") or ""))
        type_into("#f-display", "The shop")
        click('[data-testid="submit"]')
        wait("the new app in the list", lambda: find('tr[data-app="shop"]'))
        if app_status("shop") is None:
            fail("the app created in the window's form is not in the engine")
        click('tr[data-app="shop"] button[aria-label="Start shop"]')
        wait("shop to show running", lambda: find('tr[data-app="shop"] [data-status="running"]'), timeout=60)
        status, _ = proxy_get("/_app/shop/api/info")
        if status != 200:
            fail(f"shop, made in the window, answered {status} through the proxy")
        tray_wait(menu, "shop running in the tray", lambda l: app_label_has(l, "The shop", "running"))
        screenshot("created-in-window")
    else:
        log("creating an app in the form: only the engine's control panel has the form (E2E_UI=engine)")

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
    close_windows("^Hangar$")
    wait("the main window to be hidden", lambda: not x_windows("^Hangar$"))
    if not alive(desktop_pid):
        fail("the desktop app exited when its window closed")
    status, _ = proxy_get("/_app/blog/api/info")
    if status != 200:
        fail(f"after closing the window, blog through the proxy answered {status}")
    screenshot("main-window-closed")
    tray_wait(menu, "blog running with the window closed",
              lambda l: app_label_has(l, "The blog", "running"))

    # 5. Hidden for a while, the main webview is released; a second launch brings it back
    # (single instance). The log window stays open: the WebDriver session lives as long as
    # some window does.
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

    # 6. The tray only: with the log window closed and the main webview released, no webview is
    # left; WebKit's processes end and the shell alone stays, still serving. The tray's "Open
    # Hangar" brings the window back, with new WebKit processes, logged in and live. (The
    # WebDriver session ends with the last window, so from here the display is looked at.)
    close_windows("^Hangar — logs of blog$")
    close_windows("^Hangar$")
    wait("no window of the shell left on the display", lambda: not x_windows("^Hangar"))
    # The main webview is released after HANGAR_RELEASE_AFTER; with no window left, the window
    # process ends, and WebKit's processes with it.
    wait("the window process to end (no window left)",
         lambda: window_process(desktop_pid) is None, timeout=60)
    wait("no WebKit process left under the desktop app (no webview left)",
         lambda: not webkit_processes(desktop_pid), timeout=30)
    if not alive(desktop_pid):
        fail("the desktop app exited when its last window went")
    if gl_in(desktop_pid):
        fail(f"the desktop app maps GL libraries in the tray only: {gl_in(desktop_pid)}")
    status, _ = proxy_get("/_app/blog/api/info")
    if status != 200:
        fail(f"in the tray only, blog through the proxy answered {status}")
    tray_wait(menu, "blog running in the tray only",
              lambda l: app_label_has(l, "The blog", "running"))
    screenshot("tray-only")
    if screen_green_pixels() != 0:
        fail("the control panel still shows on the screen in the tray only")
    tray_click(menu, "Open Hangar")
    wait("the main window to come back (tray Open Hangar)", lambda: x_windows("^Hangar$"))
    # Running apps in green on the screen (the only window there): the page was drawn
    # (compositing mode off), logged in, and lists them.
    wait("the window rebuilt from the tray to draw the control panel with running apps",
         lambda: screen_green_pixels() >= 50, timeout=60)
    new_win = window_process(desktop_pid)
    if new_win is None or new_win == win_pid:
        fail(f"expected a new window process for the rebuilt window, got {new_win} (was {win_pid})")
    kinds = sorted(e for _, e in webkit_processes(new_win))
    if "WebKitNetworkProcess" not in kinds or "WebKitWebProcess" not in kinds:
        fail(f"expected new WebKit processes for the rebuilt window, got {kinds}")
    screenshot("main-window-from-tray")

    # 7. Quitting from the tray leaves no app process behind.
    apps = api_apps()
    pids = [a["pid"] for a in apps if a.get("pid")]
    if len(pids) < 2:
        fail(f"expected main and blog running before the quit, got {[(a['name'], a['status']) for a in apps]}")
    log(f"quitting from the tray; app process groups {pids}")
    tray_click(menu, "Quit Hangar")
    wait("the desktop app to exit", lambda: not alive(desktop_pid), timeout=90)
    screenshot("after-quit")
    nothing_left(pids, "quitting", win=new_win)
    try:
        wd("DELETE", s(""))
    except Exception:
        pass
    attach()
    no_tray()
    from_menu()
    late_tray()
    log("PASSED: window lists apps, start from the window, a sub-app made in the window's form "
        "and started there, tray menu over D-Bus (StatusNotifier "
        "+ dbusmenu) following the engine and starting/stopping apps, log window with a live "
        "line, close to tray with the proxy serving, webview released and WebKit's processes "
        "ended, window back from the tray and from a second launch (single instance), tray "
        "Quit with nothing left, attach to a running engine and Quit it from its tray, no tray: "
        "closing the window quits with nothing left, a tray that comes late is used and one that "
        "goes brings the window back"
        + (", started from the app menu's entry (installed package)" if ENTRY else ""))


def from_menu():
    """10. As a new user does after installing the package: Hangar started from the app menu
    (`gio launch` runs the entry's Exec, as a menu does) opens its window and tray, an app is
    stopped and started from the tray and answers through the proxy, and Quit leaves nothing.
    Only against the installed package: scripts/test-deb.sh INSTALL=1 (CI) sets the entry."""
    if not ENTRY:
        log("from the app menu: checked against the installed package (scripts/test-deb.sh INSTALL=1)")
        return
    # The app inherits gio's output: a file, not a pipe that would stay open while it runs.
    with open(os.path.join(OUT, "from-menu.log"), "w") as out:
        r = subprocess.run(["gio", "launch", ENTRY], stdout=out, stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        fail(f"gio launch {ENTRY} failed ({r.returncode}): see {OUT}/from-menu.log")
    wait("the engine of the app started from the menu",
         lambda: os.path.exists(os.path.join(HOME, "engine.json")), timeout=60)
    pid = json.load(open(os.path.join(HOME, "engine.json")))["pid"]
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        if exe != BIN:
            fail(f"the menu entry started {exe}, not the installed {BIN}")
        wait("the main window (started from the menu)", lambda: x_windows("^Hangar$"), timeout=60)
        screenshot("from-menu")
        menu = tray_of(pid)
        # blog starts on a visit: after a restart it waits, asleep, until one comes (or a Start).
        tray_wait(menu, "main running, blog asleep", lambda l: sni.find(l, "~Main app — running")
                  and app_label_has(l, "The blog", "asleep"))
        tray_click(menu, "~The blog — ", "Start")
        wait("blog running (tray, started from the menu)", lambda: app_status("blog") == "running")
        status, _ = proxy_get("/_app/blog/api/info")
        if status != 200:
            fail(f"blog, started from the tray of the menu-started app, answered {status}")
        pids = [a["pid"] for a in api_apps() if a.get("pid")]
        win = window_process(pid)
        tray_click(menu, "Quit Hangar")
        wait("the menu-started app to exit", lambda: not alive(pid), timeout=90)
        nothing_left(pids, "quitting the menu-started app", win=win)
    finally:
        if alive(pid):
            os.kill(pid, 15)


def stop_watcher():
    """End the StatusNotifier watcher that runs now (a panel quitting)."""
    if sni.watcher_running():
        os.kill(bus_pid(sni.WATCHER), 15)
    wait("the StatusNotifier watcher to go", lambda: not sni.watcher_running())


def start_watcher():
    """Start a StatusNotifier watcher (a panel starting)."""
    w = subprocess.Popen([sys.executable, os.path.join(HERE, "sni.py"), "watcher"])
    wait("the StatusNotifier watcher to start", sni.watcher_running)
    return w


def late_tray():
    """11. The tray host comes after Hangar and goes while Hangar is hidden: at login, autostart
    can start Hangar (`--hidden`, what start at login runs) before the panel; a panel can quit.
    With no tray at start, Hangar waits for one instead of showing its window; the tray that
    comes gets Hangar's icon and no window shows. When it goes, the main window comes back
    (never hidden where nobody can reach it), and closing that window then quits."""
    stop_watcher()
    watcher = None
    with open(os.path.join(OUT, "late-tray.log"), "w") as out:
        p = subprocess.Popen([BIN, "--hidden"], stdout=out, stderr=subprocess.STDOUT,
                             preexec_fn=low_open_files_limit)
    started = time.time()
    try:
        wait("the engine (late tray)", lambda: os.path.exists(os.path.join(HOME, "engine.json")), timeout=60)
        check_open_files_lifted(p.pid, "the desktop app (its proxy serves every app)")
        time.sleep(3)
        if x_windows("^Hangar$"):
            fail("started in the tray with no tray host yet, the window showed at once instead of "
                 "waiting for a tray")
        watcher = start_watcher()
        menu = tray_of(p.pid)
        tray_wait(menu, "main running (late tray)", lambda l: sni.find(l, "~Main app — running"))
        # Past the time Hangar waits for a tray (shell::tray_follow::TRAY_WAIT, 10 s): still no window.
        time.sleep(max(0, started + 14 - time.time()))
        if x_windows("^Hangar$"):
            fail("a tray host came within the wait, yet the window showed")
        pids = [a["pid"] for a in api_apps() if a.get("pid")]
        watcher.terminate()
        watcher.wait(timeout=30)
        watcher = None
        wait("the main window, shown when the tray went", lambda: x_windows("^Hangar$"), timeout=60)
        screenshot("late-tray-gone")
        if not alive(p.pid):
            fail("the desktop app ended when its tray went")
        close_to_quit(p, pids, "after the tray went")
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=60)
        if watcher is not None:
            watcher.terminate()
            watcher.wait(timeout=30)


def no_tray():
    """9. Where no tray is (HANGAR_TRAY=off, as on a desktop without one), closing the window
    must not leave an unreachable process: the window process asks its host to quit, which stops
    every app and ends both processes. Started directly, as from the app menu."""
    with open(os.path.join(OUT, "no-tray.log"), "w") as out:
        p = subprocess.Popen([BIN], env=dict(os.environ, HANGAR_TRAY="off"), stdout=out,
                             stderr=subprocess.STDOUT)
    try:
        wait("the main window (no tray)", lambda: x_windows("^Hangar$"), timeout=60)
        win = wait("the window process (no tray)", lambda: window_process(p.pid))
        wait("main running (no tray)", lambda: app_status("main") == "running", timeout=60)
        cli("start", "blog")
        pids = [a["pid"] for a in api_apps() if a.get("pid")]
        screenshot("no-tray")
        close_to_quit(p, pids, "with no tray", win=win)
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=60)


def attach():
    """8. An engine already runs on the home (`hangar serve`): the app attaches to it, and its
    Quit stops that engine and every app too."""
    global sid
    home2 = os.environ["E2E_HOME2"]
    with open(os.path.join(OUT, "serve.log"), "w") as out:
        serve = subprocess.Popen([os.environ["E2E_HANGAR_BIN"], "--home", home2, "serve"],
                                 stdout=out, stderr=subprocess.STDOUT, preexec_fn=low_open_files_limit)
    try:
        wait("hangar serve on the second home", lambda: os.path.exists(os.path.join(home2, "engine.json")))
        check_open_files_lifted(serve.pid, "hangar serve")
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
        menu = tray_of(info["pid"])
        tray_wait(menu, "main running (attached)", lambda l: sni.find(l, "~ — running"))
        tray_click(menu, "Quit Hangar")
        wait("the attached app to exit", lambda: not alive(info["pid"]), timeout=90)
        try:
            serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            fail("Quit in the attached app did not stop the engine it attached to")
        nothing_left(pids, "quitting the attached app", home=home2)
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
