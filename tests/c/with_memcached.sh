#!/usr/bin/env bash
# Run a command against freshly started, private memcached servers.
#
#   with_memcached.sh [--unix] [--servers N] [--tls] [--auth-server] [--] command [args...]
#   with_memcached.sh --self-test
#
# Starts N (default 1) memcached servers on free loopback TCP ports
# (memcached -l 127.0.0.1 -p PORT -U 0 -t 1), waits until each accepts
# connections, and exports:
#   MCRS_TEST_SERVER   127.0.0.1:PORT of the first server
#   MCRS_TEST_PORT     PORT of the first server
#   MCRS_TEST_SERVERS  comma-separated list of all TCP servers
# With --unix it also starts a memcached listening on a unix socket in a
# private temporary directory and exports MCRS_TEST_UNIX=/path/to/socket.
# With --tls the TCP servers speak TLS only (memcached -Z) with a certificate
# for 127.0.0.1 and localhost, made by openssl in the temporary directory for
# this run from a private CA: MCRS_TEST_TLS_CA is the CA's PEM file,
# MCRS_TEST_TLS_DIR the directory (also client.pem/client.key, signed by the CA;
# expired.pem/.key, signed by the CA but valid only in 2020; rogue.pem/.key,
# signed by another CA, rogue-ca.pem).
# With --auth-server one more, plaintext server demands a login (memcached -Y):
# MCRS_TEST_AUTH_SERVER is its address, MCRS_TEST_AUTH_USER and
# MCRS_TEST_AUTH_PASSWORD the credentials its auth file holds.
#
# The servers are stopped when the script exits (trap on EXIT), and the
# script returns the command's exit code. --self-test checks all of this.
#
# Environment: MEMCACHED (binary, default: memcached from PATH),
# MEMCACHED_ARGS (extra arguments for every server).
set -u

usage() {
    echo "usage: $0 [--unix] [--servers N] [--tls] [--auth-server] [--] command [args...]" >&2
    exit 2
}

self_test() {
    local me="$0" rc out port sock fails=0
    local bash_bin="${BASH:-bash}"
    fail() { echo "self-test FAIL: $*" >&2; fails=$((fails + 1)); }

    "$bash_bin" "$me" sh -c 'exit 7'
    rc=$?
    [ "$rc" -eq 7 ] || fail "exit code $rc, expected 7"
    "$bash_bin" "$me" true || fail "exit code of true"

    out="$("$bash_bin" "$me" --unix --servers 2 bash -c '
        set -e
        [ "$MCRS_TEST_SERVER" = "127.0.0.1:$MCRS_TEST_PORT" ]
        case "$MCRS_TEST_SERVERS" in "$MCRS_TEST_SERVER",127.0.0.1:*) ;; *) exit 3 ;; esac
        exec 3<>"/dev/tcp/127.0.0.1/$MCRS_TEST_PORT"
        printf "version\r\n" >&3
        read -r line <&3
        case "$line" in VERSION*) ;; *) exit 4 ;; esac
        second="${MCRS_TEST_SERVERS#*,}"
        exec 4<>"/dev/tcp/127.0.0.1/${second#127.0.0.1:}"
        test -S "$MCRS_TEST_UNIX"
        echo "$MCRS_TEST_PORT ${second#127.0.0.1:} $MCRS_TEST_UNIX"
    ')"
    rc=$?
    [ "$rc" -eq 0 ] || fail "environment / servers not usable (rc $rc)"
    set -- $out
    sleep 0.2
    for port in "${1:-}" "${2:-}"; do
        [ -n "$port" ] || { fail "no port reported"; continue; }
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            fail "memcached on port $port still running after exit"
        fi
    done
    sock="${3:-}"
    if [ -z "$sock" ] || [ -e "$sock" ] || [ -e "$(dirname "$sock")" ]; then
        fail "unix socket / temp dir '$sock' not cleaned up"
    fi
    if [ "$fails" -eq 0 ]; then
        echo "with_memcached.sh self-test: ok"
        return 0
    fi
    return 1
}

if [ "${1:-}" = "--self-test" ]; then
    self_test
    exit $?
fi

want_unix=0
want_tls=0
want_auth=0
n_servers=1
while [ $# -gt 0 ]; do
    case "$1" in
        --unix) want_unix=1; shift ;;
        --tls) want_tls=1; shift ;;
        --auth-server) want_auth=1; shift ;;
        --servers)
            [ $# -ge 2 ] || usage
            n_servers="$2"; shift 2
            case "$n_servers" in ''|*[!0-9]*) usage ;; esac
            [ "$n_servers" -ge 1 ] || usage
            ;;
        --) shift; break ;;
        -h|--help) usage ;;
        -*) echo "$0: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || usage

MEMCACHED="${MEMCACHED:-memcached}"
if ! command -v "$MEMCACHED" >/dev/null 2>&1; then
    echo "$0: memcached not found (install the Debian package 'memcached' or set MEMCACHED)" >&2
    exit 127
fi

user_args=()
if [ "$(id -u)" = 0 ]; then
    user_args=(-u root)
fi
# shellcheck disable=SC2206
extra_args=(${MEMCACHED_ARGS:-})

pids=()
watchdogs=()
tmpdir=""
cleanup() {
    local p
    for p in "${watchdogs[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [ -n "$tmpdir" ]; then
        rm -rf "$tmpdir"
    fi
}
trap 'cleanup 2>/dev/null' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

have_python=0
if command -v python3 >/dev/null 2>&1; then
    have_python=1
fi

# Print a port that is currently free on 127.0.0.1.
pick_port() {
    if [ "$have_python" = 1 ]; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
    else
        echo $(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    fi
}

# Succeeds when something accepts TCP connections on 127.0.0.1:$1.
tcp_ready() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Succeeds when something accepts connections on unix socket $1.
unix_ready() {
    [ -S "$1" ] || return 1
    if [ "$have_python" = 1 ]; then
        python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(1)
s.connect(sys.argv[1])
s.close()' "$1" 2>/dev/null
    fi
}

# wait_ready PID CHECK ARG: wait up to ~10 s until CHECK ARG succeeds while PID lives.
wait_ready() {
    local pid="$1" check="$2" arg="$3" i
    for i in $(seq 1 200); do
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        if "$check" "$arg"; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# If this script dies without running its EXIT trap (SIGKILL, e.g. a ctest timeout), a
# watchdog stops the server within a second.
start_watchdog() {
    local server_pid="$1" me="$$"
    (
        while kill -0 "$me" 2>/dev/null && kill -0 "$server_pid" 2>/dev/null; do
            sleep 1
        done
        if ! kill -0 "$me" 2>/dev/null; then
            kill "$server_pid" 2>/dev/null
            sleep 0.2
            rm -rf "$tmpdir"
        fi
    ) </dev/null >/dev/null 2>&1 &
    watchdogs+=("$!")
}

# make_certs DIR: a private CA, a server certificate for 127.0.0.1 and
# localhost, and a client certificate, all signed by the CA (openssl).
make_certs() {
    local d="$1"
    command -v openssl >/dev/null 2>&1 || { echo "$0: --tls needs openssl" >&2; return 1; }
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=mcrs test CA" -keyout "$d/ca.key" -out "$d/ca.pem" >/dev/null 2>&1 || return 1
    local who
    for who in server client; do
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj "/CN=mcrs test $who" -keyout "$d/$who.key" -out "$d/$who.csr" \
            >/dev/null 2>&1 || return 1
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' \
            >"$d/$who.ext"
        openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
            -CAcreateserial -days 2 -extfile "$d/$who.ext" -out "$d/$who.pem" \
            >/dev/null 2>&1 || return 1
    done
    # expired.pem: signed by the CA, valid only in 2020 (openssl ca sets the dates)
    mkdir -p "$d/ca-db" && : >"$d/ca-db/index.txt" && echo 01 >"$d/ca-db/serial"
    printf '%s\n' '[ca]' 'default_ca = t' '[t]' "database = $d/ca-db/index.txt" \
        "new_certs_dir = $d/ca-db" "serial = $d/ca-db/serial" 'default_md = sha256' \
        'policy = p' 'copy_extensions = none' '[p]' 'commonName = supplied' '[ext]' \
        'subjectAltName = IP:127.0.0.1,DNS:localhost' 'basicConstraints = CA:FALSE' \
        >"$d/ca-db/ca.cnf"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=mcrs test expired" -keyout "$d/expired.key" -out "$d/expired.csr" \
        >/dev/null 2>&1 || return 1
    openssl ca -batch -notext -config "$d/ca-db/ca.cnf" -cert "$d/ca.pem" -keyfile "$d/ca.key" \
        -in "$d/expired.csr" -out "$d/expired.pem" -extensions ext \
        -startdate 20200101000000Z -enddate 20200102000000Z >/dev/null 2>&1 || return 1
    # rogue.pem: a server certificate from another CA, which no client trusts
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=mcrs rogue CA" -keyout "$d/rogue-ca.key" -out "$d/rogue-ca.pem" \
        >/dev/null 2>&1 || return 1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=mcrs rogue" -keyout "$d/rogue.key" -out "$d/rogue.csr" >/dev/null 2>&1 ||
        return 1
    openssl x509 -req -in "$d/rogue.csr" -CA "$d/rogue-ca.pem" -CAkey "$d/rogue-ca.key" \
        -CAcreateserial -days 2 -extfile "$d/server.ext" -out "$d/rogue.pem" \
        >/dev/null 2>&1 || return 1
}

ports=()
server_args=()
start_tcp_server() {
    local attempt port pid log
    for attempt in $(seq 1 20); do
        port="$(pick_port)" || return 1
        # something else may listen there already (port picked without python)
        if tcp_ready "$port"; then
            continue
        fi
        log="$tmpdir/memcached-$port.log"
        "$MEMCACHED" -l 127.0.0.1 -p "$port" -U 0 -t 1 "${user_args[@]}" "${extra_args[@]}" \
            "${server_args[@]}" >"$log" 2>&1 &
        pid=$!
        if wait_ready "$pid" tcp_ready "$port"; then
            pids+=("$pid")
            start_watchdog "$pid"
            ports+=("$port")
            return 0
        fi
        # bind failed (port taken in between) or server did not come up: retry
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        echo "$0: memcached on port $port did not start (attempt $attempt): $(tr '\n' ' ' <"$log")" >&2
    done
    echo "$0: could not start memcached on a free loopback port" >&2
    return 1
}

tmpdir="$(mktemp -d "${TMPDIR:-/tmp}/mcrs-memcached.XXXXXX")" || exit 1

if [ "$want_tls" = 1 ]; then
    make_certs "$tmpdir" || { echo "$0: could not make test certificates" >&2; exit 1; }
    server_args=(-Z -o "ssl_chain_cert=$tmpdir/server.pem" -o "ssl_key=$tmpdir/server.key")
    export MCRS_TEST_TLS_CA="$tmpdir/ca.pem"
    export MCRS_TEST_TLS_DIR="$tmpdir"
fi
for _ in $(seq 1 "$n_servers"); do
    start_tcp_server || exit 1
done
tls_ports=("${ports[@]}")
if [ "$want_auth" = 1 ]; then
    printf 'mcrs:s3cret-pw\n' >"$tmpdir/auth"
    server_args=(-Y "$tmpdir/auth")
    start_tcp_server || exit 1
    export MCRS_TEST_AUTH_SERVER="127.0.0.1:${ports[${#ports[@]}-1]}"
    export MCRS_TEST_AUTH_USER=mcrs
    export MCRS_TEST_AUTH_PASSWORD=s3cret-pw
    ports=("${tls_ports[@]}")
fi

servers=""
for p in "${ports[@]}"; do
    servers="${servers:+$servers,}127.0.0.1:$p"
done
export MCRS_TEST_SERVER="127.0.0.1:${ports[0]}"
export MCRS_TEST_PORT="${ports[0]}"
export MCRS_TEST_SERVERS="$servers"

if [ "$want_unix" = 1 ]; then
    sock="$tmpdir/memcached.sock"
    "$MEMCACHED" -s "$sock" -a 0700 -U 0 -t 1 "${user_args[@]}" "${extra_args[@]}" \
        >"$tmpdir/memcached-unix.log" 2>&1 &
    upid=$!
    if ! wait_ready "$upid" unix_ready "$sock"; then
        echo "$0: memcached on unix socket $sock did not start: $(tr '\n' ' ' <"$tmpdir/memcached-unix.log")" >&2
        kill "$upid" 2>/dev/null
        exit 1
    fi
    pids+=("$upid")
    start_watchdog "$upid"
    export MCRS_TEST_UNIX="$sock"
fi

"$@"
rc=$?
exit "$rc"
