"""The memory budget in action (run by bench/memory-budget.sh): APPS on-visit demo apps that each
hold HOLD_MB MiB once visited, under a budget that fits FIT of them; VISITS visits round the
apps in a shuffled order that repeats. Prints, as Markdown: the apps' memory over time against
the budget (sampled from GET /api/v1/host every 250 ms), and the latency of a visit that found
its app running, one that woke it with room to spare, and one that had to put another app to
sleep first.

Everything listens on 127.0.0.1 and is stopped at the end, by pid; every loop is bounded.
"""

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HANGAR, DEMO = sys.argv[1], sys.argv[2]
APPS = int(os.environ.get("APPS", "6"))
FIT = int(os.environ.get("FIT", "3"))
HOLD_MB = int(os.environ.get("HOLD_MB", "100"))
VISITS = int(os.environ.get("VISITS", "60"))
SEED = int(os.environ.get("SEED", "7"))
MIB = 1 << 20


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def request(port, method, path, token=None, body=None, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    text = r.read()
    c.close()
    return r.status, text


def main():
    home = tempfile.mkdtemp(prefix="hangar-budget-bench-")
    proxy, api = free_port(), free_port()
    # Budget: FIT apps at what they hold, plus a little for the demo apps' own memory.
    budget_mb = FIT * (HOLD_MB + 12) + 8
    with open(os.path.join(home, "hangar.toml"), "w") as f:
        f.write(
            f'proxy_port = {proxy}\napi_port = {api}\nmemory_budget = "{budget_mb}M"\n'
            f'[main]\nenabled = false\n'
        )
    env = dict(os.environ, HANGAR_DEMO_BIN=DEMO, HANGAR_LOG="warn")
    engine = subprocess.Popen(
        [HANGAR, "--home", home, "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(home, "engine.err"), "w"),
    )
    try:
        for _ in range(300):
            if os.path.exists(os.path.join(home, "engine.json")):
                break
            time.sleep(0.1)
        token = open(os.path.join(home, "token")).read().strip()
        names = [f"m{i}" for i in range(APPS)]
        for n in names:
            st, body = request(api, "POST", "/api/v1/apps", token, {"name": n})
            assert st in (200, 201), body

        samples = []  # (t, used, budget)
        stop = threading.Event()

        def sampler():
            t0 = time.monotonic()
            while not stop.is_set():
                st, body = request(api, "GET", "/api/v1/host", token)
                b = json.loads(body).get("memory_budget") if st == 200 else None
                if b:
                    samples.append((time.monotonic() - t0, b["used_bytes"], b["budget_bytes"]))
                time.sleep(0.25)

        th = threading.Thread(target=sampler, daemon=True)
        th.start()

        def statuses():
            st, body = request(api, "GET", "/api/v1/apps", token)
            return {a["name"]: (a["status"], a.get("reason")) for a in json.loads(body)["apps"]}

        rng = random.Random(SEED)
        order = names[:]
        kinds = {"running": [], "woken": [], "woken after an eviction": []}
        failed = 0
        requests = 0
        for i in range(VISITS):
            if i % APPS == 0:
                rng.shuffle(order)
            n = order[i % APPS]
            before = statuses()
            t = time.monotonic()
            st, body = request(proxy, "GET", f"/_app/{n}/api/hold?mb=0")
            requests += 1
            took = time.monotonic() - t
            if st != 200:
                failed += 1
                continue
            after = statuses()
            slept = [
                m
                for m in names
                if m != n
                and before[m][0] == "running"
                and after[m][0] != "running"
                and (after[m][1] or "").startswith("memory budget: making room for " + n)
            ]
            if before[n][0] == "running":
                kinds["running"].append(took)
            elif slept:
                kinds["woken after an eviction"].append(took)
            else:
                kinds["woken"].append(took)
            # A woken app then holds its share (a second request: the wake above is timed).
            if before[n][0] != "running":
                st, _ = request(proxy, "GET", f"/_app/{n}/api/hold?mb={HOLD_MB}")
                requests += 1
                if st != 200:
                    failed += 1
            time.sleep(0.6)
        time.sleep(2)
        stop.set()
        th.join(timeout=5)

        budget = samples[-1][2] if samples else budget_mb * MIB
        over = [s for s in samples if s[1] > s[2]]
        peak = max((s[1] for s in samples), default=0)
        print(f"{APPS} demo apps holding {HOLD_MB} MiB each once visited; budget {budget // MIB} MiB "
              f"(fits {FIT}); {VISITS} visits in a shuffled round; debug build; 2 cores.\n")
        print("| figure | value |\n| --- | --- |")
        print(f"| requests answered 200 | {requests - failed} of {requests} |")
        print(f"| apps' memory, samples (every 250 ms) | {len(samples)} |")
        print(f"| peak | {peak / MIB:.0f} MiB ({100 * peak / budget:.0f}% of the budget) |")
        print(f"| samples over the budget | {len(over)} ({100 * len(over) / max(1, len(samples)):.1f}%) |")
        mean = statistics.mean(s[1] for s in samples) if samples else 0
        print(f"| mean | {mean / MIB:.0f} MiB |")
        for k, v in kinds.items():
            if v:
                print(f"| visit, app {k} (n={len(v)}) | median {1000 * statistics.median(v):.0f} ms, max {1000 * max(v):.0f} ms |")
        # The series, coarse: one row per 2 s.
        print("\nApps' memory over time (MiB, every 2 s; the budget is " f"{budget // MIB} MiB):\n")
        row, nxt = [], 0.0
        for t, used, _ in samples:
            if t >= nxt:
                row.append(f"{used // MIB}")
                nxt += 2.0
        print("`" + " ".join(row) + "`")
    finally:
        try:
            request(api, "POST", "/api/v1/kill", token, {})
        except Exception:
            pass
        try:
            engine.wait(timeout=60)
        except subprocess.TimeoutExpired:
            engine.kill()


if __name__ == "__main__":
    main()
