#!/usr/bin/env python3
"""Inside Xvfb + D-Bus (with a StatusNotifier watcher, the tray host a panel runs): measure the
desktop shell's memory in three states, and `hangar serve` as the peer. For the shell process and
each WebKit child: RSS and PSS from /proc/PID/smaps_rollup (PSS shares each page among the
processes mapping it, so PSS sums to what the processes together cost), and whether Mesa's
libLLVM is mapped in the shell. Started processes are ended by their own pids only."""
import json, os, socket, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "e2e"))
from procs import children, exe  # noqa: E402

BIN = os.environ["BIN_DIR"]
WORK = os.environ["WORK"]
ROOT = os.environ["ROOT"]
REPEAT = int(os.environ.get("REPEAT", "3"))
SETTLE = float(os.environ.get("SETTLE", "8"))
LATER = float(os.environ.get("LATER", "60"))


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def rollup(pid):
    """(RSS, PSS, anonymous RSS) in kB from smaps_rollup."""
    v = {}
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                v[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        return (0, 0, 0)
    return (v.get("Rss", 0), v.get("Pss", 0), v.get("Anonymous", 0))


def llvm_mapped(pid):
    try:
        return any("libLLVM" in line for line in open(f"/proc/{pid}/maps"))
    except OSError:
        return False


def sample(root):
    """{process: (RSS, PSS, anon) MB} for the shell, its window process (`hangar-desktop
    --window`, a child) and the WebKit processes under either (the apps apart), and whether the
    shell maps libLLVM."""
    r = {"shell": rollup(root)}
    apps = [0, 0, 0]
    todo = children(root)
    while todo:
        p = todo.pop()
        name = exe(p)
        if name.startswith("WebKit") or name == "hangar-desktop":
            key = "window process" if name == "hangar-desktop" else name
            prev = r.get(key, (0, 0, 0))
            r[key] = tuple(a + b for a, b in zip(prev, rollup(p)))
            if name == "hangar-desktop":
                todo.extend(children(p))
        else:
            apps = [a + b for a, b in zip(apps, rollup(p))]
            todo.extend(children(p))
    r["apps"] = tuple(apps)
    return {k: tuple(x / 1024 for x in v) for k, v in r.items()}, llvm_mapped(root)


def home():
    h = os.path.join(WORK, f"home{time.time_ns()}")
    os.makedirs(h)
    with open(os.path.join(h, "hangar.toml"), "w") as f:
        f.write(f"proxy_port = {free_port()}\napi_port = {free_port()}\n")
    return h


def wait(what, fn, timeout=90):
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


def x_windows(title, visible=False):
    """X windows named `title`: every one, or only those shown (not hidden ones)."""
    args = ["xdotool", "search"] + (["--onlyvisible"] if visible else []) + ["--name", title]
    return subprocess.run(args, capture_output=True, text=True).stdout.split()


def run_serve():
    h = home()
    p = subprocess.Popen([f"{BIN}/hangar", "--home", h, "serve"], stderr=subprocess.DEVNULL)
    wait("hangar serve", lambda: engine_up(h)); time.sleep(SETTLE)
    r = sample(p.pid); stop(p); return {"hangar serve (peer: same engine, headless)": r}


def run_desktop(hidden, single=False):
    h = home()
    env = dict(os.environ, HANGAR_RELEASE_AFTER="3")
    if single:
        env["HANGAR_SINGLE_PROCESS"] = "1"
    env.setdefault("HANGAR_BUILTIN_UI", "1")  # the pages inside the shell, as before
    args = [f"{BIN}/hangar-desktop", "--home", h] + (["--hidden"] if hidden else [])
    log = open(os.path.join(WORK, "desktop.log"), "a")
    p = subprocess.Popen(args, env=env, stderr=log)
    wait("the desktop engine", lambda: engine_up(h))
    if hidden:
        time.sleep(SETTLE); r = {"tray only (--hidden, no webview yet)": sample(p.pid)}
    else:
        wait("the main window", lambda: x_windows("^Hangar$")); time.sleep(SETTLE)
        r = {"window open": sample(p.pid)}
        for w in x_windows("^Hangar$"):
            subprocess.run([sys.executable, os.path.join(ROOT, "scripts/e2e/x11_close.py"), w])
        wait("the webview to be released", lambda: not x_windows("^Hangar$"))
        time.sleep(3 + SETTLE); r["window released (tray only after a window)"] = sample(p.pid)
        # Pages the shell still uses come back as it runs: the same, a while later.
        time.sleep(LATER); r[f"window released, {LATER:.0f} s later"] = sample(p.pid)
        # Opening it again (a second launch hands over to the first): ms until it is mapped.
        t0 = time.monotonic()
        subprocess.run(args, env=env, stderr=log, timeout=60)
        wait("the window back", lambda: x_windows("^Hangar$", visible=True), timeout=60)
        REOPEN.setdefault(single, []).append((time.monotonic() - t0) * 1000)
    stop(p)
    if single:
        r = {f"{k} (--single-process)": v for k, v in r.items()}
    return r


REOPEN = {}


def median(xs):
    xs = sorted(xs); return xs[len(xs) // 2]


watcher = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts/e2e/sni.py"), "watcher"])
time.sleep(1)
results = {}
try:
    for _ in range(REPEAT):
        for run in (run_serve, lambda: run_desktop(False), lambda: run_desktop(True),
                    lambda: run_desktop(False, single=True)):
            for k, v in run().items():
                results.setdefault(k, []).append(v)
finally:
    stop(watcher)

print("| state | process | RSS MB | PSS MB | anon MB |")
print("| --- | --- | ---: | ---: | ---: |")
for state, runs in results.items():
    names = []
    for procs, _ in runs:
        names += [n for n in procs if n not in names]
    total = [0.0, 0.0, 0.0]
    for n in names:
        m = [median([procs.get(n, (0, 0, 0))[i] for procs, _ in runs]) for i in range(3)]
        if n != "apps":
            total = [a + b for a, b in zip(total, m)]
        if n == "apps" or m[0] > 0:
            print(f"| {state} | {n} | {m[0]:.0f} | {m[1]:.0f} | {m[2]:.0f} |")
    llvm = sum(1 for _, l in runs if l)
    print(f"| {state} | **shell + WebKit** (libLLVM in the shell: {llvm} of {len(runs)} runs) | "
          f"**{total[0]:.0f}** | **{total[1]:.0f}** | {total[2]:.0f} |")
for single, ms in REOPEN.items():
    print(f"\nwindow back after its release (second launch → window mapped), "
          f"{'--single-process' if single else 'window process'}: median {median(ms):.0f} ms "
          f"({', '.join(f'{m:.0f}' for m in ms)})")
print(f"\nmedians of {REPEAT} runs; {BIN}; env: " + " ".join(
    f"{k}={os.environ[k]}" for k in ("WEBKIT_DISABLE_COMPOSITING_MODE", "GDK_GL", "HANGAR_BUILTIN_UI")
    if k in os.environ))
