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


def status_kb(pid, key):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree(root):
    """MB: (shell RSS, WebKit RSS, apps RSS, shell anonymous RSS, WebKit anonymous RSS) for
    `root` and its descendants. Anonymous RSS leaves out the shared libraries' file pages
    (libwebkit2gtk alone maps ~100 MB of code), which RSS counts once touched."""
    t = procs()
    kids = {}
    for pid, (ppid, _, _) in t.items():
        kids.setdefault(ppid, []).append(pid)
    shell = webkit = apps = shell_anon = webkit_anon = 0
    todo = [root]
    while todo:
        p = todo.pop()
        if p not in t:
            continue
        _, rss, comm = t[p]
        if p == root:
            shell += rss
            shell_anon += status_kb(p, "RssAnon")
        elif comm.startswith("WebKit"):
            webkit += rss
            webkit_anon += status_kb(p, "RssAnon")
        else:
            apps += rss
        todo.extend(kids.get(p, []))
    return tuple(x / 1024 for x in (shell, webkit, apps, shell_anon, webkit_anon))


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

print("| state | shell process RSS (anon) | WebKit processes RSS (anon) | shell + WebKit RSS (anon) | apps RSS |")
print("| --- | ---: | ---: | ---: | ---: |")
for k, runs in results.items():
    m = [median([r[i] for r in runs]) for i in range(5)]
    print(f"| {k} | {m[0]:.0f} MB ({m[3]:.0f}) | {m[1]:.0f} MB ({m[4]:.0f}) | "
          f"{m[0] + m[1]:.0f} MB ({m[3] + m[4]:.0f}) | {m[2]:.0f} MB |")
print(f"\nmedians of {REPEAT} runs; anon = RssAnon, the process's own memory without shared-library pages")
