#!/usr/bin/env python3
"""Scale (issue 18), one run, release builds of `hangar` and `hangar-demo`:

1. 50 demo apps started together (50 API requests at once, then 50 `hangar start` at once) until every one answers its health
   path, against the floor: the same 50 `hangar-demo serve` processes started by a shell.
2. 1,000 registered apps with 200 demo apps running: the engine's RSS and idle CPU, the time of
   `hangar list --json` and of `GET /api/v1/apps`, the fan-out of events to 10 open panels (SSE
   clients of `/api/v1/events`): the time from an edit until all 10 have it, and the engine's CPU
   per event with 10 panels against none.
3. The proxy's CPU per request (its `hangar-proxy-N` threads, utime+stime) and context switches
   per request with wrk on one app, then round robin over 200 apps, flat out and paced to the
   same load, against nginx (one upstream per app, kept connections) in the same run.

Usage: bench/scale.py   (env HANGAR_BIN, HANGAR_DEMO_BIN; default $CARGO_TARGET_DIR/release;
N_START=50 N_REG=1000 N_RUN=200 PANELS=10 EDITS=100 IDLE_SECS=20 WRK_SECS=10 PACED_RPS=5000)
"""
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import nginx_peer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
HANGAR = os.environ.get("HANGAR_BIN", os.path.join(TARGET, "release", "hangar"))
DEMO = os.environ.get("HANGAR_DEMO_BIN", os.path.join(TARGET, "release", "hangar-demo"))
N_START = int(os.environ.get("N_START", 50))
N_REG = int(os.environ.get("N_REG", 1000))
N_RUN = int(os.environ.get("N_RUN", 200))
PANELS = int(os.environ.get("PANELS", 10))
EDITS = int(os.environ.get("EDITS", 100))
IDLE_SECS = float(os.environ.get("IDLE_SECS", 20))
WRK_SECS = int(os.environ.get("WRK_SECS", 10))
PACED_RPS = int(os.environ.get("PACED_RPS", 5000))
TCK = os.sysconf("SC_CLK_TCK")
PROXY, API = 21790, 21791
BASE_PORT = 23000


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def ticks(path):
    with open(path) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def cpu_s(pid):
    return ticks(f"/proc/{pid}/stat") / TCK


def proxy_tasks(pid):
    """The /proc folders of the engine's proxy threads (`hangar-proxy-N`)."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().startswith("hangar-proxy"):
                    out.append(f"/proc/{pid}/task/{tid}")
        except OSError:
            pass
    return out


def cost(tasks):
    """CPU seconds (user + system) and context switches of these /proc task folders so far."""
    cpu, switches = 0, 0
    for t in tasks:
        cpu += ticks(f"{t}/stat")
        with open(f"{t}/status") as f:
            switches += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
    return cpu / TCK, switches


def tcp_active_opens():
    """Connections this machine opened so far (wrk's and the proxy's upstream ones)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("ActiveOpens")])


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def answers(port, path):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", path)
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


def wait_all(targets, t0, limit=120):
    """Poll every (port, path) until each answers 200; ms from t0 until the last did."""
    left = set(targets)
    while left and time.monotonic() - t0 < limit:
        for t in list(left):
            if answers(*t):
                left.discard(t)
        time.sleep(0.005)
    if left:
        raise SystemExit(f"{len(left)} never answered")
    return (time.monotonic() - t0) * 1000


def hangar(home, *args, check=True):
    return subprocess.run([HANGAR, "--home", home, *args], check=check,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def median_p95(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[max(0, int(len(xs) * 0.95) - 1)]


class Api:
    def __init__(self, home):
        with open(os.path.join(home, "token")) as f:
            self.token = f.read().strip()

    def call(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", API, timeout=30)
        c.request(method, "/api/v1" + path, body=json.dumps(body) if body is not None else None,
                  headers={"Authorization": f"Bearer {self.token}",
                           "Content-Type": "application/json",
                           "Host": f"127.0.0.1:{API}"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data


class Panel(threading.Thread):
    """An open panel: an SSE client of /api/v1/events noting when each app event arrived."""

    def __init__(self, token):
        super().__init__(daemon=True)
        self.token = token
        self.seen = {}  # display name -> monotonic time
        self.ready = threading.Event()
        self.sock = None

    def run(self):
        s = socket.create_connection(("127.0.0.1", API))
        self.sock = s
        s.sendall((f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{API}\r\n"
                   f"Authorization: Bearer {self.token}\r\nAccept: text/event-stream\r\n\r\n").encode())
        buf = b""
        self.ready.set()
        while True:
            try:
                chunk = s.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            now = time.monotonic()
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                i = line.find(b'"display_name":"')
                if line.startswith(b"data:") and i >= 0:
                    j = line.index(b'"', i + 16)
                    self.seen.setdefault(line[i + 16:j].decode(), now)

    def close(self):
        if self.sock:
            self.sock.close()


def main():
    for b in (HANGAR, DEMO):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"no build at {b}: cargo build --release -p hangar -p hangar-demo")
    work = tempfile.mkdtemp(prefix="hangar-scale.")
    home = os.path.join(work, "home")
    os.makedirs(home)
    env = dict(os.environ, HANGAR_DEMO_BIN=DEMO)
    engine = None
    out = []
    try:
        # ------------------------------------------------ 1a. the floor: a shell starts them
        log(f"bare: {N_START} hangar-demo processes from a shell ...")
        procs = []
        targets = []
        t0 = time.monotonic()
        for i in range(N_START):
            d = os.path.join(work, "bare", f"a{i}")
            os.makedirs(d)
            port = BASE_PORT + 900 + i
            procs.append(subprocess.Popen(
                [DEMO, "serve", "--port", str(port)], cwd=d,
                env=dict(os.environ, HANGAR_DATA_DIR=d, HANGAR_BASE_PATH=f"/_app/a{i}", HANGAR_APP=f"a{i}"),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            targets.append((port, f"/_app/a{i}/_health"))
        bare_ms = wait_all(targets, t0)
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        time.sleep(1)

        # ------------------------------------------------ 1b. Hangar starts them
        with open(os.path.join(home, "hangar.toml"), "w") as f:
            f.write(f'proxy_port = {PROXY}\napi_port = {API}\napp_ports = "{BASE_PORT + 2000}-{BASE_PORT + 2999}"\n'
                    f"max_connections_per_ip = 4096\n[main]\nenabled = false\n")
        engine = subprocess.Popen([HANGAR, "--home", home, "serve"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "serve.log"), "w"))
        for _ in range(200):
            if os.path.exists(os.path.join(home, "engine.json")):
                break
            time.sleep(0.05)
        time.sleep(0.3)
        api = Api(home)
        log(f"registering {N_REG} apps ...")

        failed = []

        def create(i):
            st, body = api.call("POST", "/apps", {"name": f"s{i}", "port": BASE_PORT + i,
                                                  "start_mode": "on-visit"})
            if st >= 300:
                failed.append(f"create s{i}: {st} {body[:300]}")
        threads = []
        for k in range(4):
            t = threading.Thread(target=lambda k=k: [create(i) for i in range(k, N_REG, 4)])
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        if failed:
            # A thread's SystemExit is swallowed: the failures are collected and raised here.
            raise SystemExit(f"{len(failed)} creates failed, first: {failed[0]}")
        log(f"hangar: starting {N_START} apps at once ...")
        targets = [(BASE_PORT + i, f"/_app/s{i}/_health") for i in range(N_START)]
        t0 = time.monotonic()
        # Started together through the API, as the panel's bulk action and a script do: one
        # request per app, all at once (50 CLI processes would measure 50 process starts).
        starters = [threading.Thread(target=api.call, args=("POST", f"/apps/s{i}/start"))
                    for i in range(N_START)]
        for s in starters:
            s.start()
        hangar_ms = wait_all(targets, t0)
        for s in starters:
            s.join()
        out.append(f"| {N_START} demo apps started together (one API request each, at once), until every "
                   f"one answers | {hangar_ms:.0f} ms (with {N_REG} registered) | {bare_ms:.0f} ms |")
        # The same through 50 CLI processes at once (`hangar start NAME` each), after a stop.
        for i in range(N_START):
            api.call("POST", f"/apps/s{i}/stop")
        time.sleep(1)
        t0 = time.monotonic()
        starters = [subprocess.Popen([HANGAR, "--home", home, "start", f"s{i}"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    for i in range(N_START)]
        cli_ms = wait_all(targets, t0)
        for s in starters:
            s.wait()
        out.append(f"| the same, through {N_START} `hangar start NAME` processes at once | {cli_ms:.0f} ms | |")

        # ------------------------------------------------ 2. 1000 registered, 200 running
        log(f"starting {N_RUN} in all ...")
        for lo in range(N_START, N_RUN, 25):
            ss = [subprocess.Popen([HANGAR, "--home", home, "start", f"s{i}"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for i in range(lo, min(lo + 25, N_RUN))]
            for s in ss:
                s.wait()
        running = sum(1 for a in json.loads(hangar(home, "list", "--json").stdout)
                      if a.get("status") == "running")
        time.sleep(5)
        pid = engine.pid
        c0 = cpu_s(pid)
        time.sleep(IDLE_SECS)
        idle_pct = (cpu_s(pid) - c0) / IDLE_SECS * 100
        rss = rss_mib(pid)
        lt = []
        for _ in range(20):
            t = time.monotonic()
            hangar(home, "list", "--json")
            lt.append((time.monotonic() - t) * 1000)
        at = []
        for _ in range(20):
            t = time.monotonic()
            api.call("GET", "/apps")
            at.append((time.monotonic() - t) * 1000)
        lm, lp = median_p95(lt)
        am, ap = median_p95(at)

        # Event fan-out: EDITS edits of display names, with no panel and with PANELS panels.
        def edits(tag):
            c0 = cpu_s(pid)
            sent = {}
            for k in range(EDITS):
                name = f"{tag}-{k}"
                sent[name] = time.monotonic()
                st, body = api.call("PATCH", f"/apps/s{k % N_RUN}", {"display_name": name})
                if st >= 300:
                    raise SystemExit(f"edit: {st} {body[:200]}")
            return sent, cpu_s(pid) - c0

        _, cpu_none = edits("none")
        panels = [Panel(api.token) for _ in range(PANELS)]
        for p in panels:
            p.start()
            p.ready.wait()
        time.sleep(1)
        sent, cpu_panels = edits("ten")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(len(p.seen) >= EDITS for p in panels):
            time.sleep(0.05)
        lat = []
        for name, t in sent.items():
            arrivals = [p.seen.get(name) for p in panels]
            if all(arrivals):
                lat.append((max(arrivals) - t) * 1000)
        for p in panels:
            p.close()
        fm, fp = median_p95(lat) if lat else (float("nan"), float("nan"))
        per_event = (cpu_panels - cpu_none) / EDITS * 1e3
        out += [
            f"| apps running (of {N_REG} registered) | {running} | |",
            f"| engine memory (RSS) | {rss:.1f} MiB | |",
            f"| engine CPU when idle ({IDLE_SECS:.0f} s) | {idle_pct:.2f} % of a core | |",
            f"| `hangar list --json`, whole CLI process, median (p95) of 20 | {lm:.1f} ms ({lp:.1f}) | |",
            f"| `GET /api/v1/apps` alone, median (p95) | {am:.1f} ms ({ap:.1f}) | |",
            f"| an edit until all {PANELS} panels have its event, median (p95) of {EDITS} | {fm:.1f} ms ({fp:.1f}) "
            f"| {len(lat)} of {EDITS} seen by all |",
            f"| engine CPU per edit: none open / {PANELS} panels open | {cpu_none / EDITS * 1e3:.2f} ms / "
            f"{cpu_panels / EDITS * 1e3:.2f} ms | {per_event / PANELS * 1e3:.0f} µs per event per panel |",
        ]

        # ------------------------------------------------ 3. proxy CPU per request
        # Hangar and nginx (one upstream per app, kept connections) in the same run, each
        # with wrk on one app and round robin over N_RUN apps: flat out, then paced to the same
        # offered load (PACED_RPS; a proxy's cost per request falls as its load rises, since
        # one wake-up serves more requests, so only equal loads compare).
        if not shutil.which("wrk") or not shutil.which("nginx"):
            raise SystemExit("the proxy phase needs wrk and nginx: scripts/install-deps.sh bench")
        ngx_port = PROXY + 9
        ngx_work = os.path.join(work, "nginx")
        os.makedirs(ngx_work)
        nginx = nginx_peer.start(ngx_work, ngx_port,
                                 [(f"/_app/s{i}/", BASE_PORT + i) for i in range(N_RUN)],
                                 open(os.path.join(ngx_work, "out.log"), "w"))
        try:
            for _ in range(100):
                if answers(ngx_port, "/_app/s0/api/info"):
                    break
                time.sleep(0.05)
            peers = [("Hangar", PROXY, proxy_tasks(pid)),
                     ("nginx", ngx_port, [f"/proc/{p}" for p in nginx_peer.pids(nginx)[1:]])]
            delay = max(1, round(64 * 1000 / PACED_RPS))  # ms between a connection's requests
            figures = {}
            for paced in (False, True):
                for spread in ("1 app", f"{N_RUN} apps, round robin"):
                    lua = os.path.join(work, f"wrk-{paced}-{spread[0]}.lua")
                    with open(lua, "w") as f:
                        if spread != "1 app":
                            f.write(f'local n = 0\nrequest = function()\n  n = n + 1\n'
                                    f'  return wrk.format("GET", "/_app/s" .. (n % {N_RUN}) .. "/api/info")\nend\n')
                        if paced:
                            f.write(f"delay = function() return {delay} end\n")
                    for name, port, tasks in peers:
                        o0, (c0, s0) = tcp_active_opens(), cost(tasks)
                        r = subprocess.run(["wrk", "-t2", "-c64", f"-d{WRK_SECS}s", "-s", lua,
                                            f"http://127.0.0.1:{port}/_app/s0/api/info"],
                                           stdout=subprocess.PIPE, text=True, check=True).stdout
                        c1, s1 = cost(tasks)
                        reqs = int(r.split(" requests in ")[0].split()[-1])
                        bad = r.split("Non-2xx or 3xx responses: ")[1].split()[0] if "Non-2xx" in r else "0"
                        figures[(paced, spread, name)] = (
                            (c1 - c0) / reqs * 1e6, (s1 - s0) / reqs, reqs / WRK_SECS, bad,
                            tcp_active_opens() - o0)
            for paced in (False, True):
                load = f"paced to {64000 // delay:,} req/s at most" if paced else "flat out"
                for spread in ("1 app", f"{N_RUN} apps, round robin"):
                    h, n = figures[(paced, spread, "Hangar")], figures[(paced, spread, "nginx")]
                    out.append(
                        f"| proxy CPU per request, {spread}, {load} (wrk -t2 -c64, {WRK_SECS} s) | "
                        f"{h[0]:.1f} µs, {h[1]:.2f} switches, {h[2]:,.0f} req/s, non-2xx {h[3]}, "
                        f"{h[4]} TCP opens | nginx {n[0]:.1f} µs, {n[1]:.2f} switches, "
                        f"{n[2]:,.0f} req/s, non-2xx {n[3]} |")
        finally:
            nginx.terminate()
            nginx.wait()
    finally:
        if engine:
            hangar(home, "kill", check=False)
            engine.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"| figure | Hangar | notes / floor |")
    print("| --- | --- | --- |")
    for line in out:
        print(line)


if __name__ == "__main__":
    main()
