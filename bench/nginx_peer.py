"""nginx as the proxy benchmarks' peer: one configuration for every bench that runs it beside
Hangar (bench/proxy_bench.py: one app; bench/scale.py: one upstream per app, round robin).

Each upstream keeps connections to its app (`keepalive`), HTTP/1.1 upstream, the same
forwarding headers Hangar sets, WebSocket upgrades passed on; no access log. Runs in the
foreground (`daemon off`) so the caller stops it by pid.
"""
import os
import subprocess


def start(work, port, routes, log):
    """Start nginx on 127.0.0.1:`port` with `routes`, a list of (location, app port); its files
    live under `work` (made readable by nginx's workers). Returns the Popen."""
    tmp = os.path.join(work, "nginx-tmp")
    os.makedirs(tmp, exist_ok=True)
    os.chmod(work, 0o755)
    os.chmod(tmp, 0o777)  # nginx's workers (nobody) write their temp files below it
    upstreams = "\n".join(f"    upstream u{i} {{ server 127.0.0.1:{p}; keepalive 128; }}"
                          for i, (_, p) in enumerate(routes))
    locations = "\n".join(f"        location {loc} {{ proxy_pass http://u{i}; }}"
                          for i, (loc, _) in enumerate(routes))
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes auto;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    proxy_http_version 1.1;
    proxy_set_header Host $host;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Host $host;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_read_timeout 300s;
{upstreams}
    server {{
        listen 127.0.0.1:{port};
{locations}
    }}
}}
""")
    return subprocess.Popen(["nginx", "-c", conf, "-p", work], stdout=log, stderr=log)


def pids(nginx):
    """The master and its workers."""
    out = subprocess.run(["pgrep", "-P", str(nginx.pid)], capture_output=True, text=True).stdout
    return [nginx.pid] + [int(p) for p in out.split()]
