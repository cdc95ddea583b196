#!/usr/bin/env python3
"""Inside Xvfb + D-Bus: measure the shell's memory in three states and `hangar serve` as the
peer. Started processes are ended by their own pids only."""
import json, os, socket, subprocess, sys, time

BIN = os.environ["BIN_DIR"]
WORK = os.environ["WORK"]
ROOT = os.environ["ROOT"]
REPEAT = int(os.environ.get("REPEAT", "3"))


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def procs():
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,rss=,comm="], capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        pid, ppid, rss, comm = line.split(None, 3)
        table[int(pid)] = (int(ppid), int(rss), comm.strip())
    return table


def tree(root):
    """RSS in MB: (shell, webkit, apps) for `root` and its descendants."""
    t = procs()
    kids = {}
    for pid, (ppid, _, _) in t.items():
        kids.setdefault(ppid, []).append(pid)
    shell = webkit = apps = 0
    todo = [root]
    while todo:
        p = todo.pop()
        if p not in t:
            continue
        _, rss, comm = t[p]
        if p == root:
            shell += rss
        elif comm.startswith("WebKit"):
            webkit += rss
        else:
            apps += rss
        todo.extend(kids.get(p, []))
    return shell / 1024, webkit / 1024, apps / 1024


def home():
    h = os.path.join(WORK, f"home{time.time_ns()}")
    os.makedirs(h)
    with open(os.path.join(h, "hangar.toml"), "w") as f:
        f.write(f"proxy_port = {free_port()}\napi_port = {free_port()}\n")
    return h


def wait(what, fn, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    sys.exit(f"desktop-memory: timed out waiting for {what}")


def engine_up(h):
    return os.path.exists(os.path.join(h, "engine.json"))


def stop(p):
    p.terminate()
    try:
        p.wait(120)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()


def settle():
    time.sleep(8)  # let boot-time allocations and the first sampler ticks pass


def x_windows(title):
    r = subprocess.run(["xdotool", "search", "--name", title], capture_output=True, text=True)
    return r.stdout.split()


def run_serve():
    h = home()
    p = subprocess.Popen([f"{BIN}/hangar", "--home", h, "serve"], stderr=subprocess.DEVNULL)
    wait("hangar serve", lambda: engine_up(h)); settle()
    r = tree(p.pid); stop(p); return r


def run_desktop(hidden):
    h = home()
    env = dict(os.environ, HANGAR_RELEASE_AFTER="3", HANGAR_BUILTIN_UI="1")
    args = [f"{BIN}/hangar-desktop", "--home", h] + (["--hidden"] if hidden else [])
    p = subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL)
    wait("the desktop engine", lambda: engine_up(h))
    if hidden:
        settle(); r = {"tray only (--hidden)": tree(p.pid)}
    else:
        wait("the main window", lambda: x_windows("^Hangar$")); settle()
        r = {"window open": tree(p.pid)}
        for w in x_windows("^Hangar$"):
            subprocess.run([sys.executable, os.path.join(ROOT, "scripts/e2e/x11_close.py"), w])
        wait("the webview to be released", lambda: not x_windows("^Hangar$"), timeout=60)
        settle(); r["window released"] = tree(p.pid)
    stop(p)
    return r


def median(xs):
    xs = sorted(xs); return xs[len(xs) // 2]


tray = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "28"])
time.sleep(1)
results = {}
try:
    for _ in range(REPEAT):
        results.setdefault("hangar serve (peer: same engine, headless)", []).append(run_serve())
        for k, v in run_desktop(False).items():
            results.setdefault(k, []).append(v)
        for k, v in run_desktop(True).items():
            results.setdefault(k, []).append(v)
finally:
    stop(tray)

print(f"| state | shell process | WebKit processes | shell + WebKit | apps (main app) |")
print(f"| --- | ---: | ---: | ---: | ---: |")
for k, runs in results.items():
    s = median([r[0] for r in runs]); w = median([r[1] for r in runs]); a = median([r[2] for r in runs])
    print(f"| {k} | {s:.0f} MB | {w:.0f} MB | {s + w:.0f} MB | {a:.0f} MB |")
print(f"\nmedians of {REPEAT} runs, RSS")
