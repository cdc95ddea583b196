#!/usr/bin/env bash
# Throwaway PostgreSQL and MariaDB servers on loopback, for tests.
#
#   eval "$(scripts/test-db.sh start)"   # start both (or reuse running ones), export their URLs
#   scripts/test-db.sh status            # say whether each one answers
#   scripts/test-db.sh stop              # stop both and remove their folder
#
# Settings (environment):
#   HANGAR_TEST_DB_DIR    folder for both servers' data, sockets and logs (/tmp/hangar-test-db)
#   HANGAR_TEST_PG_PORT   PostgreSQL port on 127.0.0.1 (55432)
#   HANGAR_TEST_MY_PORT   MariaDB port on 127.0.0.1 (53306)
#
# `start` prints only two lines on stdout:
#   export HANGAR_TEST_PG_URL=postgres://postgres:hangar-test@127.0.0.1:55432/postgres
#   export HANGAR_TEST_MYSQL_URL=mysql://root:hangar-test@127.0.0.1:53306/mysql
# Everything else goes to stderr. The servers never use the distribution's own services or
# their default ports; missing packages (postgresql, mariadb-server) are installed with apt-get.
# Both superusers have the password `hangar-test` and accept it over TCP from 127.0.0.1 only.

set -euo pipefail

BASE="${HANGAR_TEST_DB_DIR:-/tmp/hangar-test-db}"
PG_PORT="${HANGAR_TEST_PG_PORT:-55432}"
MY_PORT="${HANGAR_TEST_MY_PORT:-53306}"
PASSWORD="hangar-test"
PG_DIR="$BASE/pg"
MY_DIR="$BASE/my"
START_TIMEOUT=60

# Keep the real stdout on fd 3 for the export lines; all chatter goes to stderr.
exec 3>&1 1>&2

say() { echo "test-db: $*" >&2; }
die() {
    echo "test-db: error: $*" >&2
    exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 4<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_updated=0
apt_install() {
    is_root || die "package(s) $* missing and not root: install them with: sudo apt-get install $*"
    command -v apt-get >/dev/null || die "package(s) $* missing and there is no apt-get to install them"
    if [ "$apt_updated" -eq 0 ]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
        apt_updated=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 \
        || die "apt-get install $* failed"
}

# Runs a command as the owner of a server's files: the service account when we are root
# (both servers refuse to run as root), else as ourselves.
as_owner() {
    local owner="$1"
    shift
    if is_root; then
        runuser -u "$owner" -- "$@"
    else
        "$@"
    fi
}

# ---- PostgreSQL ----------------------------------------------------------------------------

PG_BIN=""
find_pg() {
    local dir
    PG_BIN=""
    # Prefer 15; take the newest one installed otherwise.
    for dir in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            PG_BIN="$dir"
            return 0
        fi
    done
    return 1
}

pg_owner() { if is_root; then echo postgres; else id -un; fi; }

pg_answers() {
    PGPASSWORD="$PASSWORD" PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -q -w -h 127.0.0.1 -p "$PG_PORT" \
        -U postgres -d postgres -tAc 'SELECT 1' 2>/dev/null | grep -qx 1
}

pg_running() { [ -f "$PG_DIR/data/postmaster.pid" ] && as_owner "$(pg_owner)" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; }

start_pg() {
    find_pg || apt_install postgresql
    find_pg || die "no PostgreSQL server found under /usr/lib/postgresql/*/bin after installing"
    local owner
    owner="$(pg_owner)"
    if is_root && ! id postgres >/dev/null 2>&1; then
        die "running as root but there is no 'postgres' user to run PostgreSQL as"
    fi

    if pg_running; then
        wait_for pg_answers || die "a PostgreSQL in $PG_DIR runs but refuses postgres/$PASSWORD on 127.0.0.1:$PG_PORT; run '$0 stop' first"
        say "PostgreSQL already running on 127.0.0.1:$PG_PORT (reused)"
        return 0
    fi
    if port_open "$PG_PORT"; then
        die "port $PG_PORT is taken by another program; set HANGAR_TEST_PG_PORT to a free port"
    fi

    mkdir -p "$PG_DIR"
    chmod 755 "$BASE" "$PG_DIR"
    if is_root; then chown "$owner" "$PG_DIR"; fi
    if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
        say "initdb PostgreSQL ($PG_BIN) in $PG_DIR/data"
        rm -rf "$PG_DIR/data"
        local pwfile="$PG_DIR/pwfile"
        printf '%s\n' "$PASSWORD" >"$pwfile"
        if is_root; then chown "$owner" "$pwfile"; fi
        chmod 600 "$pwfile"
        as_owner "$owner" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --pwfile="$pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale \
            >"$PG_DIR/initdb.log" 2>&1 \
            || { cat "$PG_DIR/initdb.log" >&2; die "PostgreSQL initdb failed (log above)"; }
        rm -f "$pwfile"
        cat >>"$PG_DIR/data/postgresql.conf" <<EOF

# hangar test server: loopback only, its own port and socket, speed over durability
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
        # Only TCP from loopback, with a password; the local socket stays trust for the owner.
        cat >"$PG_DIR/data/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 scram-sha-256
EOF
    fi

    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_owner "$owner" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t "$START_TIMEOUT" \
        start </dev/null >&2 3>&- \
        || { tail -n 30 "$PG_DIR/server.log" >&2 2>/dev/null; die "PostgreSQL did not start (server log above: $PG_DIR/server.log)"; }

    local waited=0
    until pg_answers; do
        waited=$((waited + 1))
        if [ "$waited" -ge "$START_TIMEOUT" ]; then
            tail -n 30 "$PG_DIR/server.log" >&2 2>/dev/null
            die "PostgreSQL started but does not accept postgres/$PASSWORD on 127.0.0.1:$PG_PORT"
        fi
        sleep 1
    done
    say "PostgreSQL ready on 127.0.0.1:$PG_PORT"
}

stop_pg() {
    find_pg || return 0
    if pg_running; then
        say "stopping PostgreSQL"
        as_owner "$(pg_owner)" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop </dev/null >&2 3>&- \
            || die "PostgreSQL in $PG_DIR/data did not stop"
    fi
}

# ---- MariaDB -------------------------------------------------------------------------------

MY_SERVER=""
MY_INSTALL=""
MY_CLIENT=""
find_mariadb() {
    local candidate
    MY_SERVER=""
    # /usr/sbin is not on every user's PATH.
    for candidate in "$(command -v mariadbd || true)" "$(command -v mysqld || true)" \
        /usr/sbin/mariadbd /usr/sbin/mysqld; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            MY_SERVER="$candidate"
            break
        fi
    done
    MY_INSTALL="$(command -v mariadb-install-db || command -v mysql_install_db || true)"
    MY_CLIENT="$(command -v mariadb || command -v mysql || true)"
    [ -n "$MY_SERVER" ] && [ -n "$MY_INSTALL" ] && [ -n "$MY_CLIENT" ]
}

my_owner() { if is_root; then echo mysql; else id -un; fi; }

my_answers() {
    MYSQL_PWD="$PASSWORD" "$MY_CLIENT" --no-defaults --connect-timeout=3 --protocol=TCP \
        -h 127.0.0.1 -P "$MY_PORT" -uroot -N -B -e 'SELECT 1' 2>/dev/null | grep -qx 1
}

# The pid of our running MariaDB server, from its pid file; fails when there is none (a stale
# pid file, a zombie, or a pid reused by another program do not count).
my_pid() {
    local pid state comm
    [ -f "$MY_DIR/mysqld.pid" ] || return 1
    pid="$(cat "$MY_DIR/mysqld.pid" 2>/dev/null)" || return 1
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    case "$comm" in mariadbd | mysqld) ;; *) return 1 ;; esac
    state="$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)"
    [ "$state" != "Z" ] || return 1
    echo "$pid"
}

# Waits until $1 (a test command) succeeds, for at most START_TIMEOUT seconds.
wait_for() {
    local waited=0
    until "$1"; do
        waited=$((waited + 1))
        [ "$waited" -lt "$START_TIMEOUT" ] || return 1
        sleep 1
    done
}

start_mariadb() {
    find_mariadb || apt_install mariadb-server mariadb-client
    find_mariadb || die "no MariaDB server (mariadbd/mysqld, mariadb-install-db, mariadb client) found after installing"
    local owner
    owner="$(my_owner)"
    if is_root && ! id mysql >/dev/null 2>&1; then
        die "running as root but there is no 'mysql' user to run MariaDB as"
    fi

    if my_pid >/dev/null; then
        wait_for my_answers || die "a MariaDB in $MY_DIR runs but refuses root/$PASSWORD on 127.0.0.1:$MY_PORT; run '$0 stop' first"
        say "MariaDB already running on 127.0.0.1:$MY_PORT (reused)"
        return 0
    fi
    if port_open "$MY_PORT"; then
        die "port $MY_PORT is taken by another program; set HANGAR_TEST_MY_PORT to a free port"
    fi

    mkdir -p "$MY_DIR"
    chmod 755 "$BASE" "$MY_DIR"
    if is_root; then chown "$owner" "$MY_DIR"; fi
    if [ ! -d "$MY_DIR/data/mysql" ]; then
        say "mariadb-install-db in $MY_DIR/data"
        rm -rf "$MY_DIR/data"
        local user_flag=()
        if is_root; then user_flag=(--user="$owner"); fi
        as_owner "$owner" "$MY_INSTALL" --no-defaults --datadir="$MY_DIR/data" "${user_flag[@]}" \
            --auth-root-authentication-method=normal --skip-test-db \
            >"$MY_DIR/install.log" 2>&1 </dev/null 3>&- \
            || { tail -n 30 "$MY_DIR/install.log" >&2; die "mariadb-install-db failed (log above)"; }
    fi
    # Run at every start, so a reused data folder gets the same users: root with the test
    # password, over the socket and over TCP from 127.0.0.1.
    cat >"$MY_DIR/init.sql" <<EOF
ALTER USER 'root'@'localhost' IDENTIFIED BY '$PASSWORD';
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
EOF
    if is_root; then chown "$owner" "$MY_DIR/init.sql"; fi

    say "starting MariaDB on 127.0.0.1:$MY_PORT"
    local server_args=(
        --no-defaults
        --datadir="$MY_DIR/data"
        --socket="$MY_DIR/mysqld.sock"
        --pid-file="$MY_DIR/mysqld.pid"
        --log-error="$MY_DIR/server.log"
        --port="$MY_PORT"
        --bind-address=127.0.0.1
        --skip-name-resolve
        --init-file="$MY_DIR/init.sql"
        --character-set-server=utf8mb4
        --collation-server=utf8mb4_unicode_ci
        --max-connections=300
        --innodb-buffer-pool-size=64M
        --innodb-flush-log-at-trx-commit=0
        --skip-log-bin
    )
    if is_root; then server_args+=(--user="$owner"); fi
    setsid "$MY_SERVER" "${server_args[@]}" </dev/null >>"$MY_DIR/server.log" 2>&1 3>&- &
    local server_pid=$!

    local waited=0
    until my_answers; do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            tail -n 30 "$MY_DIR/server.log" >&2 2>/dev/null
            die "MariaDB exited while starting (server log above: $MY_DIR/server.log)"
        fi
        waited=$((waited + 1))
        if [ "$waited" -ge "$START_TIMEOUT" ]; then
            tail -n 30 "$MY_DIR/server.log" >&2 2>/dev/null
            die "MariaDB does not accept root/$PASSWORD on 127.0.0.1:$MY_PORT after ${START_TIMEOUT}s"
        fi
        sleep 1
    done
    say "MariaDB ready on 127.0.0.1:$MY_PORT"
}

stop_mariadb() {
    local pid
    pid="$(my_pid)" || return 0
    say "stopping MariaDB (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$pid" 2>/dev/null; do
        waited=$((waited + 1))
        if [ "$waited" -ge 60 ]; then
            say "MariaDB (pid $pid) still running after 30 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
}

# ---- commands ------------------------------------------------------------------------------

print_urls() {
    echo "export HANGAR_TEST_PG_URL=postgres://postgres:$PASSWORD@127.0.0.1:$PG_PORT/postgres" >&3
    echo "export HANGAR_TEST_MYSQL_URL=mysql://root:$PASSWORD@127.0.0.1:$MY_PORT/mysql" >&3
}

case "${1:-}" in
start)
    mkdir -p "$BASE"
    start_pg
    start_mariadb
    print_urls
    ;;
stop)
    stop_pg
    find_mariadb || true
    stop_mariadb
    case "$BASE" in
    "" | "/" | "$HOME" | /tmp | /tmp/) die "refusing to remove HANGAR_TEST_DB_DIR=$BASE" ;;
    esac
    if [ -d "$BASE" ]; then
        say "removing $BASE"
        rm -rf "$BASE"
    fi
    ;;
status)
    find_pg && pg_answers && say "PostgreSQL answers on 127.0.0.1:$PG_PORT" || say "PostgreSQL: not running"
    find_mariadb && my_answers && say "MariaDB answers on 127.0.0.1:$MY_PORT" || say "MariaDB: not running"
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
