"""The proxy benchmark's body (run by bench/proxy.sh): direct vs nginx vs Hangar, one run.

Everything listens on 127.0.0.1 and is stopped at the end, by pid. Each wrk run is bounded
(DURATION seconds); every loop is bounded in count.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import nginx_peer

HANGAR, DEMO = sys.argv[1], sys.argv[2]
DURATION = int(os.environ.get("DURATION", "5"))
# The setups take turns, ROUNDS times, and each figure is the median of its rounds: a machine
# shared with other work then weighs on all three alike.
ROUNDS = int(os.environ.get("ROUNDS", "3"))
FIRST_VISITS = int(os.environ.get("FIRST_VISITS", "7"))  # 0: skip
TICK = os.sysconf("SC_CLK_TCK")
ERROR_LOGS = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def stat_ticks(path):
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime
    except FileNotFoundError:
        return 0


def cpu_ticks(pids):
    """CPU of processes (an int pid) or of one process's threads whose name starts with a
    prefix (a (pid, prefix) pair)."""
    total = 0
    for p in pids:
        if isinstance(p, tuple):
            pid, prefix = p
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    if f.read().startswith(prefix):
                        total += stat_ticks(f"/proc/{pid}/task/{tid}/stat")
        else:
            total += stat_ticks(f"/proc/{p}/stat")
    return total


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == pid:
                    out.append(int(d))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
    return out


def to_us(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    v, unit = float(m.group(1)), m.group(2)
    return v * {"us": 1, "ms": 1000, "s": 1_000_000}[unit]


def to_bytes(s):
    m = re.match(r"([\d.]+)([KMG]?B)", s)
    v, unit = float(m.group(1)), m.group(2)
    return v * {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[unit]


def wrk(url, conns, pids, seconds=DURATION):
    threads = 1 if conns == 1 else 2
    before = cpu_ticks(pids)
    out = subprocess.run(
        ["wrk", "--latency", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", url],
        check=True, capture_output=True, text=True,
    ).stdout
    after = cpu_ticks(pids)
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors or "Socket errors" in out:
        print(out, file=sys.stderr)
        for log in ERROR_LOGS:
            if os.path.exists(log):
                print(open(log).read()[-2000:], file=sys.stderr)
        raise SystemExit(f"wrk saw errors on {url}")
    transfer = re.search(r"Transfer/sec:\s+(\S+)", out).group(1)
    cpu_us = (after - before) * 1_000_000 / TICK
    return {
        "rps": reqs / seconds,
        "p50": to_us(lat["50"]),
        "p99": to_us(lat["99"]),
        "cpu_per_req": cpu_us / reqs if pids else None,
        "transfer": to_bytes(transfer),
    }


def get(port, path, host=None, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}", "Accept": "application/json"})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def wait_http(port, path, limit=30):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if get(port, path, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit(f"nothing answered 200 on 127.0.0.1:{port}{path}")


def own_boot(work, i):
    """Spawn hangar-demo directly, poll /_health every 1 ms: the boot with a fresh data folder
    (schema installed), and again on that folder (schema already there), in ms."""
    port = free_port()
    data = os.path.join(work, f"direct-{i}")
    os.makedirs(data)
    env = dict(os.environ, PORT=str(port), HANGAR_BASE_PATH="/_app/d", HANGAR_APP="d",
               HANGAR_DATA_DIR=data)
    times = []
    for _ in ("fresh", "again"):
        t0 = time.perf_counter()
        p = subprocess.Popen([DEMO, "serve", "--port", str(port)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = t0 + 30
        while time.perf_counter() < deadline:
            try:
                if get(port, "/_app/d/_health", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.001)
        times.append((time.perf_counter() - t0) * 1000)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=15)
    return times[0], times[1]


def main():
    work = tempfile.mkdtemp(prefix="hangar-bench-")
    os.chmod(work, 0o755)  # nginx's workers (nobody) write their temp files below it
    procs = []
    try:
        run(work, procs)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


def run(work, procs):
    proxy_port, api_port, app_port, nginx_port = free_port(), free_port(), free_port(), free_port()
    home = os.path.join(work, "home")
    os.makedirs(home)
    with open(os.path.join(home, "hangar.toml"), "w") as f:
        f.write(f"proxy_port = {proxy_port}\napi_port = {api_port}\n[main]\nenabled = false\n")
    env = dict(os.environ, HANGAR_DEMO_BIN=DEMO, HANGAR_LOG="warn")
    log = open(os.path.join(work, "serve.log"), "w")
    engine = subprocess.Popen([HANGAR, "--home", home, "serve"], env=env, stdout=log, stderr=log)
    procs.append(engine)
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(home, "engine.json")):
        if time.monotonic() > deadline:
            raise SystemExit("the engine did not start")
        time.sleep(0.02)
    cli = lambda *a: subprocess.run([HANGAR, "--home", home, *a], env=env, check=True,
                                    capture_output=True, text=True).stdout
    cli("create", "b", "--port", str(app_port), "--start-mode", "with-main")
    cli("start", "b")
    backend_pid = json.loads(cli("status", "b", "--json"))["pid"]

    ERROR_LOGS.extend([f"{work}/nginx-error.log", os.path.join(work, "serve.log")])
    nginx = nginx_peer.start(work, nginx_port, [("/", app_port)], log)
    procs.append(nginx)
    path = "/_app/b/api/info"
    wait_http(app_port, path)
    wait_http(nginx_port, path)
    wait_http(proxy_port, path)
    time.sleep(0.5)
    nginx_pids = [nginx.pid] + children(nginx.pid)

    # Hangar's proxy runs on its own threads (hangar-proxy-N). The rest of the engine is
    # measured apart: it supervises the backend in every setup alike (its output is the app's
    # request log, pumped into log files whoever proxies).
    setups = [
        ("direct", app_port, [engine.pid]),
        ("nginx", nginx_port, nginx_pids),
        ("hangar", proxy_port, [(engine.pid, "hangar-proxy")]),
    ]
    runs = {name: [] for name, _, _ in setups}
    for name, port, pids in setups:
        wrk(f"http://127.0.0.1:{port}{path}", 64, pids, seconds=2)  # warm up
    for rnd in range(ROUNDS):
        for name, port, pids in setups:
            url = f"http://127.0.0.1:{port}{path}"
            r = {
                "c1": wrk(url, 1, pids),
                "c64": wrk(url, 64, pids),
                "stream": wrk(f"http://127.0.0.1:{port}/_app/b/api/stream?mb=10", 1, pids),
            }
            runs[name].append(r)
            print(f"round {rnd + 1} {name}: {json.dumps(r)}", file=sys.stderr)
    results = {
        name: {
            kind: {
                k: (statistics.median(x[kind][k] for x in rs) if rs[0][kind][k] is not None else None)
                for k in rs[0][kind]
            }
            for kind in rs[0]
        }
        for name, rs in runs.items()
    }

    # First visit: a new on-visit app per try, held (JSON) until ready, vs the app's own boot.
    if FIRST_VISITS == 0:
        print_table(results, None, None)
        return
    # Each try measures the app's own boots and Hangar's visits back to back, so that both
    # see the same machine load.
    boots, boots_again, visits, rewakes = [], [], [], []
    for i in range(FIRST_VISITS):
        b, b2 = own_boot(work, i)
        boots.append(b)
        boots_again.append(b2)
        name = f"fv{i}"
        cli("create", name, "--idle-timeout", "1")
        t0 = time.perf_counter()
        # The same request as the direct measurement ends with: the app's health path.
        status, body = get(proxy_port, f"/_app/{name}/_health")
        visits.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise SystemExit(f"first visit of {name}: {status} {body[:200]!r}")
        # Woken again after an idle stop: the runtime's version is asked before this start
        # (an upgrade may be due), which a never-started app does not need.
        deadline = time.monotonic() + 30
        while json.loads(cli("status", name, "--json"))["status"] != "stopped":
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} was not stopped for idleness")
            time.sleep(0.05)
        t0 = time.perf_counter()
        status, body = get(proxy_port, f"/_app/{name}/_health")
        rewakes.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise SystemExit(f"visit of {name} after its idle stop: {status} {body[:200]!r}")
        cli("stop", name)
    med = statistics.median
    print_table(results, med(boots), med(visits), (med(boots_again), med(rewakes)))


def print_table(results, boot, visit, rewake=None):
    d, n, h = results["direct"], results["nginx"], results["hangar"]
    gb = lambda b: f"{b / (1 << 30):.2f} GB/s"
    rows = [
        ("req/s, 1 connection", *(f"{x['c1']['rps']:,.0f}" for x in (d, n, h))),
        ("req/s, 64 connections", *(f"{x['c64']['rps']:,.0f}" for x in (d, n, h))),
        ("proxy CPU µs/request, 1 connection", f"({d['c1']['cpu_per_req']:.1f})", f"{n['c1']['cpu_per_req']:.1f}", f"{h['c1']['cpu_per_req']:.1f}"),
        ("proxy CPU µs/request, 64 connections", f"({d['c64']['cpu_per_req']:.1f})", f"{n['c64']['cpu_per_req']:.1f}", f"{h['c64']['cpu_per_req']:.1f}"),
        ("p50 latency, 1 connection", *(f"{x['c1']['p50']:.0f} µs" for x in (d, n, h))),
        ("p99 latency, 1 connection", *(f"{x['c1']['p99']:.0f} µs" for x in (d, n, h))),
        ("added p50, 1 connection", "–", f"+{n['c1']['p50'] - d['c1']['p50']:.0f} µs", f"+{h['c1']['p50'] - d['c1']['p50']:.0f} µs"),
        ("p50 latency, 64 connections", *(f"{x['c64']['p50']:.0f} µs" for x in (d, n, h))),
        ("p99 latency, 64 connections", *(f"{x['c64']['p99']:.0f} µs" for x in (d, n, h))),
        ("10 MiB responses, 1 connection", *(gb(x["stream"]["transfer"]) for x in (d, n, h))),
        ("proxy CPU per 10 MiB response", "–", f"{n['stream']['cpu_per_req'] / 1000:.2f} ms", f"{h['stream']['cpu_per_req'] / 1000:.2f} ms"),
    ]
    print(f"| figure (median of {ROUNDS} rounds, {DURATION} s per wrk run) | direct | nginx | Hangar |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print("(direct: the engine's CPU per request while the backend is hit directly: the backend's "
          "request log lines pumped into its log file, paid in all three setups, not counted above.)")
    if boot is None:
        return
    print()
    print(f"First visit (median of {FIRST_VISITS}): the app's own boot until /_health answers "
          f"{boot:.1f} ms; first request through Hangar until answered {visit:.1f} ms; "
          f"added {visit - boot:+.1f} ms.")
    if rewake is not None:
        again, visit2 = rewake
        print(f"Visit after an idle stop (median of {FIRST_VISITS}): the app's own boot on its "
              f"existing data {again:.1f} ms; the visit until answered {visit2:.1f} ms; "
              f"added {visit2 - again:+.1f} ms.")


if __name__ == "__main__":
    main()
