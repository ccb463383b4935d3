#!/usr/bin/env bash
# Start / stop the database servers the test suite runs against.
#
#   scripts/test-services.sh start    start PostgreSQL + MariaDB (idempotent)
#   scripts/test-services.sh stop     stop what `start` started
#   scripts/test-services.sh status   show what is running
#   scripts/test-services.sh env      print `export` lines for the tests:
#                                       eval "$(scripts/test-services.sh env)"
#
# PostgreSQL: the Debian cluster <version>/main (created with pg_createcluster
#   if missing), controlled with pg_ctlcluster, listen_addresses='127.0.0.1'.
# MariaDB: a private instance (own datadir, config, socket and pid file under
#   $OBPILOT_TEST_STATE_DIR/mariadb), started as a background mariadbd with
#   bind-address=127.0.0.1.  No systemd is needed.
#
# Both get a login `obpilot` / password `obpilot` that may create databases.
# Ports are 5432 and 3306 unless something else already listens there when
# a server is started; then the next free port is used and recorded (in the
# PG cluster config / the MariaDB config file).  `env` prints the real ones.
#
# Start/stop need root (pg_ctlcluster, mariadbd --user=mysql); `env` does not.
set -euo pipefail

STATE_DIR=${OBPILOT_TEST_STATE_DIR:-/var/lib/obpilot-test-services}
WAIT_SECONDS=${OBPILOT_TEST_SERVICES_TIMEOUT:-60}

TEST_USER=obpilot
TEST_PASSWORD=obpilot

PG_CLUSTER=main
PG_DEFAULT_PORT=5432

MY_DIR=$STATE_DIR/mariadb
MY_CNF=$MY_DIR/my.cnf
MY_DATADIR=$MY_DIR/data
MY_SOCKET=$MY_DIR/mysqld.sock
MY_PIDFILE=$MY_DIR/mysqld.pid
MY_LOG=$MY_DIR/mysqld.log
MY_DEFAULT_PORT=3306

PG_MARKER=$STATE_DIR/postgresql.started-by-us

log() { printf 'test-services: %s\n' "$*" >&2; }
die() { printf 'test-services: ERROR: %s\n' "$*" >&2; exit 1; }

need_root() {
    [[ $(id -u) -eq 0 ]] || die "'$1' must run as root (uses pg_ctlcluster and mariadbd --user=mysql)"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# First port >= $1 that nothing listens on (tries 100 ports).
pick_free_port() {
    local port=$1 last=$(($1 + 100))
    while ((port < last)); do
        if ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
        port=$((port + 1))
    done
    die "no free port in $1..$((last - 1))"
}

# ---------------------------------------------------------------- PostgreSQL

# Highest installed PostgreSQL major version (15 on Debian 12).
pg_version() {
    local v
    v=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n1)
    [[ -n "$v" ]] || return 1
    echo "$v"
}

pg_conf_dir() { echo "/etc/postgresql/$1/$PG_CLUSTER"; }

# Configured port of the cluster (default when the cluster does not exist).
pg_port() {
    local v port=""
    if v=$(pg_version) && [[ -f "$(pg_conf_dir "$v")/postgresql.conf" ]] && command -v pg_conftool >/dev/null; then
        port=$(pg_conftool -s "$v" "$PG_CLUSTER" show port 2>/dev/null || true)
    fi
    echo "${port:-$PG_DEFAULT_PORT}"
}

pg_running() {
    local v=$1
    # pg_lsclusters prints "online" in the Status column for a running cluster.
    pg_lsclusters --no-header "$v" "$PG_CLUSTER" 2>/dev/null | awk '{print $4}' | grep -qx online
}

# Run SQL as the postgres superuser over the Unix socket (peer auth).
pg_superuser_sql() {
    local port=$1
    shift
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@"
}

pg_start() {
    local v port restart=0
    v=$(pg_version) || die "PostgreSQL is not installed (run scripts/install-system-deps.sh)"
    command -v pg_ctlcluster >/dev/null || die "pg_ctlcluster missing (package postgresql-common)"

    if [[ ! -f "$(pg_conf_dir "$v")/postgresql.conf" ]]; then
        port=$(pick_free_port "$PG_DEFAULT_PORT")
        log "creating PostgreSQL cluster $v/$PG_CLUSTER on port $port"
        pg_createcluster --port "$port" "$v" "$PG_CLUSTER" >/dev/null
    fi

    # The run directory lives on tmpfs on a normal host; recreate if missing.
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql

    # listen_addresses goes into a conf.d drop-in (Debian's postgresql.conf
    # includes conf.d last, so it wins).  Not via `pg_conftool set`: that
    # writes 127.0.0.1 unquoted, which PostgreSQL rejects as a syntax error.
    local conf_dir dropin wanted
    conf_dir=$(pg_conf_dir "$v")
    grep -Eq "^[[:space:]]*include_dir[[:space:]]*=[[:space:]]*'conf.d'" "$conf_dir/postgresql.conf" \
        || die "$conf_dir/postgresql.conf has no include_dir = 'conf.d'"
    dropin=$conf_dir/conf.d/obpilot-test.conf
    wanted=$(printf "%s\n%s\n" \
        "# Written by obpilot scripts/test-services.sh: loopback only." \
        "listen_addresses = '127.0.0.1'")
    if [[ ! -f $dropin || "$(cat "$dropin")" != "$wanted" ]]; then
        install -d -o postgres -g postgres -m 0755 "$conf_dir/conf.d"
        printf '%s\n' "$wanted" >"$dropin"
        chown postgres:postgres "$dropin"
        chmod 0644 "$dropin"
        restart=1
    fi

    port=$(pg_port)
    if pg_running "$v"; then
        if ((restart)); then
            log "restarting PostgreSQL $v/$PG_CLUSTER to apply listen_addresses"
            pg_ctlcluster "$v" "$PG_CLUSTER" restart
        else
            log "PostgreSQL $v/$PG_CLUSTER already running on port $port"
        fi
    else
        # Prefer the default port; fall back to the next free one.
        local want
        want=$(pick_free_port "$PG_DEFAULT_PORT")
        if [[ $want != "$port" ]]; then
            [[ $want == "$PG_DEFAULT_PORT" ]] || log "port $PG_DEFAULT_PORT is taken by another program; using $want"
            pg_conftool "$v" "$PG_CLUSTER" set port "$want"
            port=$want
        fi
        log "starting PostgreSQL $v/$PG_CLUSTER on 127.0.0.1:$port"
        if ! pg_ctlcluster "$v" "$PG_CLUSTER" start; then
            tail -n 20 "/var/log/postgresql/postgresql-$v-$PG_CLUSTER.log" >&2 2>/dev/null || true
            die "PostgreSQL failed to start"
        fi
        mkdir -p "$STATE_DIR"
        touch "$PG_MARKER"
    fi

    local waited=0
    until pg_isready -q -h 127.0.0.1 -p "$port" -d postgres; do
        ((waited < WAIT_SECONDS)) || die "PostgreSQL not accepting connections on 127.0.0.1:$port after ${WAIT_SECONDS}s (see /var/log/postgresql/postgresql-$v-$PG_CLUSTER.log)"
        sleep 1
        waited=$((waited + 1))
    done

    # Create or refresh the test login (idempotent).
    pg_superuser_sql "$port" <<SQL
SELECT format('CREATE ROLE %I', '$TEST_USER')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$TEST_USER') \\gexec
ALTER ROLE "$TEST_USER" WITH LOGIN CREATEDB PASSWORD '$TEST_PASSWORD';
GRANT pg_signal_backend TO "$TEST_USER";
SQL

    # Check the test login really works over TCP.
    PGPASSWORD=$TEST_PASSWORD PGCONNECT_TIMEOUT=10 \
        psql -X -q -At -h 127.0.0.1 -p "$port" -U "$TEST_USER" -d postgres -c 'SELECT 1' >/dev/null \
        || die "cannot log in to PostgreSQL as $TEST_USER over 127.0.0.1:$port"
    log "PostgreSQL ready: $TEST_USER@127.0.0.1:$port"
}

pg_stop() {
    local v
    v=$(pg_version) || return 0
    if [[ ! -e "$PG_MARKER" ]]; then
        if pg_running "$v"; then
            log "PostgreSQL $v/$PG_CLUSTER was not started by this script; leaving it running"
        fi
        return 0
    fi
    if pg_running "$v"; then
        log "stopping PostgreSQL $v/$PG_CLUSTER"
        pg_ctlcluster "$v" "$PG_CLUSTER" stop -m fast
    fi
    rm -f "$PG_MARKER"
}

# ------------------------------------------------------------------- MariaDB

mariadbd_bin() {
    local b
    for b in mariadbd mysqld; do
        if command -v "$b" >/dev/null; then command -v "$b"; return 0; fi
        if [[ -x /usr/sbin/$b ]]; then echo "/usr/sbin/$b"; return 0; fi
    done
    return 1
}

# Configured port of our MariaDB instance.
my_port() {
    local port=""
    if [[ -r $MY_CNF ]]; then
        port=$(awk -F= '/^[[:space:]]*port[[:space:]]*=/ {gsub(/[[:space:]]/, "", $2); print $2; exit}' "$MY_CNF")
    fi
    echo "${port:-$MY_DEFAULT_PORT}"
}

# Pid of our running mariadbd, if any.  The pid file alone is not trusted:
# the process must exist and have been started with our config file.
my_pid() {
    local pid
    [[ -r $MY_PIDFILE ]] || return 1
    pid=$(tr -dc '0-9' <"$MY_PIDFILE")
    [[ -n "$pid" && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--defaults-file=$MY_CNF" || return 1
    echo "$pid"
}

my_write_cnf() {
    local port=$1
    cat >"$MY_CNF" <<CNF
# Generated by scripts/test-services.sh -- private MariaDB for the test suite.
[mysqld]
user                   = mysql
datadir                = $MY_DATADIR
socket                 = $MY_SOCKET
pid-file               = $MY_PIDFILE
log-error              = $MY_LOG
port                   = $port
bind-address           = 127.0.0.1
skip-name-resolve
character-set-server   = utf8mb4
collation-server       = utf8mb4_general_ci
max_connections        = 300
innodb_buffer_pool_size = 256M
# Test data is disposable: trade durability for speed.
innodb_flush_log_at_trx_commit = 2
innodb_doublewrite     = 0

[client]
socket                 = $MY_SOCKET
port                   = $port
CNF
    chmod 0644 "$MY_CNF"
}

# Run SQL from stdin as MariaDB root over our Unix socket (unix_socket auth
# as OS root).
my_root_sql() {
    mariadb --defaults-file="$MY_CNF" -uroot
}

my_start() {
    local bin pid port
    bin=$(mariadbd_bin) || die "MariaDB server is not installed (run scripts/install-system-deps.sh)"
    command -v mariadb-install-db >/dev/null || die "mariadb-install-db missing"
    id mysql >/dev/null 2>&1 || die "system user 'mysql' missing (package mariadb-server)"

    install -d -m 0755 "$STATE_DIR"
    install -d -o mysql -g mysql -m 0750 "$MY_DIR"
    # The cnf must be readable by the client, which runs as the invoking user.
    chmod 0755 "$MY_DIR"

    if pid=$(my_pid); then
        log "MariaDB already running (pid $pid) on port $(my_port)"
    else
        # Prefer the default port; fall back to the next free one.
        port=$(pick_free_port "$MY_DEFAULT_PORT")
        [[ $port == "$MY_DEFAULT_PORT" ]] || log "port $MY_DEFAULT_PORT is taken by another program; using $port"
        my_write_cnf "$port"

        if [[ ! -d $MY_DATADIR/mysql ]]; then
            log "initialising MariaDB datadir $MY_DATADIR"
            rm -rf "$MY_DATADIR"
            install -d -o mysql -g mysql -m 0750 "$MY_DATADIR"
            local init_log=$MY_DIR/install-db.log
            if ! mariadb-install-db --defaults-file="$MY_CNF" --user=mysql \
                --auth-root-authentication-method=socket --skip-test-db \
                >"$init_log" 2>&1; then
                cat "$init_log" >&2
                die "mariadb-install-db failed"
            fi
        fi

        rm -f "$MY_PIDFILE"
        log "starting MariaDB on 127.0.0.1:$port"
        # setsid: detach from the caller's session/process group so that
        # Ctrl-C in `make test` does not take the server down with it.
        setsid "$bin" --defaults-file="$MY_CNF" </dev/null >>"$MY_LOG" 2>&1 &
        local launcher=$!

        # Wait until the server writes its pid file; fail fast if it exits.
        local waited=0
        until pid=$(my_pid); do
            if ! kill -0 "$launcher" 2>/dev/null; then
                tail -n 30 "$MY_LOG" >&2 || true
                die "MariaDB exited during startup (log: $MY_LOG)"
            fi
            ((waited < WAIT_SECONDS * 10)) || die "MariaDB wrote no pid file within ${WAIT_SECONDS}s (log: $MY_LOG)"
            sleep 0.1
            waited=$((waited + 1))
        done
    fi

    port=$(my_port)
    local waited=0
    until mariadb-admin --defaults-file="$MY_CNF" -uroot --connect-timeout=2 ping >/dev/null 2>&1; do
        if ! my_pid >/dev/null; then
            tail -n 30 "$MY_LOG" >&2 || true
            die "MariaDB exited during startup (log: $MY_LOG)"
        fi
        ((waited < WAIT_SECONDS * 10)) || die "MariaDB not accepting connections after ${WAIT_SECONDS}s (log: $MY_LOG)"
        sleep 0.1
        waited=$((waited + 1))
    done

    # Create or refresh the test login (idempotent).  With skip-name-resolve,
    # TCP clients from loopback match host '127.0.0.1'; 'localhost' is for the
    # Unix socket.
    my_root_sql <<SQL
CREATE USER IF NOT EXISTS '$TEST_USER'@'127.0.0.1' IDENTIFIED BY '$TEST_PASSWORD';
CREATE USER IF NOT EXISTS '$TEST_USER'@'localhost' IDENTIFIED BY '$TEST_PASSWORD';
ALTER USER '$TEST_USER'@'127.0.0.1' IDENTIFIED BY '$TEST_PASSWORD';
ALTER USER '$TEST_USER'@'localhost' IDENTIFIED BY '$TEST_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'localhost' WITH GRANT OPTION;
SQL

    # Check the test login really works over TCP.
    mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$port" -u "$TEST_USER" -p"$TEST_PASSWORD" \
        --connect-timeout=10 -e 'SELECT 1' >/dev/null \
        || die "cannot log in to MariaDB as $TEST_USER over 127.0.0.1:$port"
    log "MariaDB ready: $TEST_USER@127.0.0.1:$port"
}

my_stop() {
    local pid
    if ! pid=$(my_pid); then
        return 0
    fi
    log "stopping MariaDB (pid $pid)"
    kill -TERM "$pid"
    local waited=0
    while [[ -e /proc/$pid ]]; do
        if ((waited >= WAIT_SECONDS * 10)); then
            log "MariaDB (pid $pid) did not stop within ${WAIT_SECONDS}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$MY_PIDFILE"
}

# -------------------------------------------------------------------- main

cmd_env() {
    printf 'export OBPILOT_TEST_PG_URL=%s\n' \
        "postgresql+psycopg://$TEST_USER:$TEST_PASSWORD@127.0.0.1:$(pg_port)/postgres"
    printf 'export OBPILOT_TEST_MYSQL_URL=%s\n' \
        "mysql+aiomysql://$TEST_USER:$TEST_PASSWORD@127.0.0.1:$(my_port)/mysql"
}

cmd_status() {
    local v pid rc=0
    if v=$(pg_version) && pg_running "$v"; then
        echo "postgresql: running ($v/$PG_CLUSTER, port $(pg_port))"
    else
        echo "postgresql: stopped"
        rc=1
    fi
    if pid=$(my_pid); then
        echo "mariadb:    running (pid $pid, port $(my_port))"
    else
        echo "mariadb:    stopped"
        rc=1
    fi
    return $rc
}

case "${1:-}" in
    start)
        need_root start
        pg_start
        my_start
        ;;
    stop)
        need_root stop
        my_stop
        pg_stop
        ;;
    status)
        cmd_status
        ;;
    env)
        cmd_env
        ;;
    *)
        echo "usage: $0 start|stop|status|env" >&2
        exit 2
        ;;
esac
