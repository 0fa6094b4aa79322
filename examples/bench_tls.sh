#!/usr/bin/env bash
# TLS against plaintext, one mcrs client each, on two private memcached
# servers (one plain, one -Z with a certificate from a CA made here by
# openssl): instructions per op (valgrind callgrind, whole program) of get,
# set and mget100 (per key), the event loop's get (examples/bench_loop.c,
# one and 100 in flight), the cost of a reconnect with a resumed TLS session
# (reconnect) and of a full handshake (new_client: a client per op), and
# ops/s of get (median of RUNS alternating runs).
#
#   cargo build --release && examples/bench_tls.sh
#
# Environment: CG_OPS_LO [2000] CG_OPS_HI [4000] (the two op counts whose
# difference gives instructions/op; reconnect and new_client use a tenth),
# RUNS [3] OPS [20000] (ops/s), VALUE_SIZE [100], CC [cc], SKIP_PY=1 (no
# pymemcache rows: pymemcache with and without tls_context, beside mcrs).
# memcached 1.6.18 stalls on long pipelined streams of sets over TLS, so
# there is no set_noreply row.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
CG_OPS_LO="${CG_OPS_LO:-2000}"
CG_OPS_HI="${CG_OPS_HI:-4000}"
RUNS="${RUNS:-3}"
OPS="${OPS:-20000}"
VALUE_SIZE="${VALUE_SIZE:-100}"
cc="${CC:-cc}"
libdir="$root/target/release"
[ -e "$libdir/libmcrs.so" ] || { echo "bench_tls.sh: run cargo build --release first" >&2; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/mcrs-bench-tls.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$cc" -std=gnu11 -Wall -Wextra -O2 -I"$root/include" -o "$work/bench" "$here/bench.c" \
    -L"$libdir" -lmcrs -Wl,-rpath,"$libdir"
"$cc" -std=gnu11 -Wall -Wextra -O2 -pthread -I"$root/include" -o "$work/bench_loop" \
    "$here/bench_loop.c" -L"$libdir" -lmcrs -Wl,-rpath,"$libdir"

# certificates: a CA, and a server certificate for 127.0.0.1 signed by it
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=bench CA" -keyout "$work/ca.key" -out "$work/ca.pem" >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=bench" \
    -keyout "$work/server.key" -out "$work/server.csr" >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\n' >"$work/ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -days 2 -extfile "$work/ext" -out "$work/server.pem" >/dev/null 2>&1

user=()
[ "$(id -u)" = 0 ] && user=(-u root)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # start PORT ARGS...: a memcached, waited for
    local port="$1"; shift
    memcached -l 127.0.0.1 -p "$port" -U 0 -t 1 -m 256 "${user[@]}" "$@" >/dev/null 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench_tls.sh: memcached on $port did not start" >&2; exit 1
}
plain_port="$(free_port)"; start "$plain_port"
tls_port="$(free_port)"
start "$tls_port" -Z -o "ssl_chain_cert=$work/server.pem" -o "ssl_key=$work/server.key"

run() { # run plain|tls OPS WORKLOAD
    local ca=""
    [ "$1" = tls ] && ca="$work/ca.pem"
    local port="$plain_port"
    [ "$1" = tls ] && port="$tls_port"
    MCRS_BENCH_TLS_CA="$ca" "$work/bench" 127.0.0.1 "$port" "$2" "$VALUE_SIZE" "$3"
}
ir() { # ir plain|tls OPS WORKLOAD: total instructions of the program
    local ca=""
    [ "$1" = tls ] && ca="$work/ca.pem"
    local port="$plain_port"
    [ "$1" = tls ] && port="$tls_port"
    MCRS_BENCH_TLS_CA="$ca" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$work/bench" 127.0.0.1 "$port" "$2" "$VALUE_SIZE" "$3" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
loop_ir() { # loop_ir plain|tls OPS DEPTH: total instructions of bench_loop's loop_get
    local ca="" port="$plain_port"
    [ "$1" = tls ] && { ca="$work/ca.pem"; port="$tls_port"; }
    MCRS_BENCH_TLS_CA="$ca" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$work/bench_loop" 127.0.0.1 "$port" "$2" "$VALUE_SIZE" loop_get "$3" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
loop_row() { # loop_row NAME DEPTH LO HI: the event loop's get, per op
    local p t pl ph tl th
    pl="$(loop_ir plain "$3" "$2")"; ph="$(loop_ir plain "$4" "$2")"
    tl="$(loop_ir tls "$3" "$2")"; th="$(loop_ir tls "$4" "$2")"
    p="$(python3 -c "print(round(($ph - $pl) / ($4 - $3)))")"
    t="$(python3 -c "print(round(($th - $tl) / ($4 - $3)))")"
    printf '%s\t%s\t%s\t%s\n' "$1" "$p" "$t" "$(python3 -c "print(f'{$t / $p:.2f}')")"
}
per_op() { # per_op plain|tls WORKLOAD LO HI [DIVISOR]
    local lo hi
    lo="$(ir "$1" "$3" "$2")"; hi="$(ir "$1" "$4" "$2")"
    python3 -c "print(round(($hi - $lo) / (($4 - $3) / ${5:-1})))"
}

# every get hits
run plain 1000 set >/dev/null
run tls 1000 set >/dev/null

echo "# TLS vs plaintext, mcrs $(git -C "$root" rev-parse --short HEAD), value $VALUE_SIZE bytes"
echo "# instructions per op: valgrind --tool=callgrind, (Ir at $CG_OPS_HI ops - Ir at $CG_OPS_LO ops) / difference"
printf 'workload\tplain_ir\ttls_ir\tratio\n'
row() { # row NAME WORKLOAD LO HI [DIVISOR]
    local p t
    p="$(per_op plain "$2" "$3" "$4" "${5:-1}")"
    t="$(per_op tls "$2" "$3" "$4" "${5:-1}")"
    printf '%s\t%s\t%s\t%s\n' "$1" "$p" "$t" "$(python3 -c "print(f'{$t / $p:.2f}')")"
}
row get get "$CG_OPS_LO" "$CG_OPS_HI"
row set set "$CG_OPS_LO" "$CG_OPS_HI"
# mget100: OPS counts keys (OPS/100 requests); per key
row mget100_per_key mget100 "$((CG_OPS_LO * 10))" "$((CG_OPS_HI * 10))"
# the event loop (examples/bench_loop.c): one in flight, and 100
loop_row loop_get_depth1 1 "$CG_OPS_LO" "$CG_OPS_HI"
loop_row loop_get_depth100 100 "$((CG_OPS_LO * 5))" "$((CG_OPS_HI * 5))"
row reconnect reconnect "$((CG_OPS_LO / 10))" "$((CG_OPS_HI / 10))"
row new_client new_client "$((CG_OPS_LO / 10))" "$((CG_OPS_HI / 10))"

echo "# ops/s of get: median of $RUNS alternating runs of $OPS ops"
pl=(); tl=()
for _ in $(seq 1 "$RUNS"); do
    pl+=("$(run plain "$OPS" get | awk '{print $2}')")
    tl+=("$(run tls "$OPS" get | awk '{print $2}')")
done
python3 - "${pl[*]}" "${tl[*]}" <<'PY'
import statistics, sys
p = statistics.median(map(float, sys.argv[1].split()))
t = statistics.median(map(float, sys.argv[2].split()))
print(f"get_ops_per_s\t{p:.0f}\t{t:.0f}\t{t / p:.2f}")
PY

[ "${SKIP_PY:-0}" = 1 ] && exit 0
python3 -c 'import pymemcache' 2>/dev/null || { echo "# pymemcache not installed: no pymemcache rows"; exit 0; }
cat >"$work/pymc_get.py" <<'PY'
import ssl, sys, time
from pymemcache.client.base import Client
port, ops, vsz, ca, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca) if ca else None
c = Client(("127.0.0.1", port), no_delay=True, default_noreply=False, tls_context=ctx)
v = b"v" * vsz
for i in range(1000):
    c.set("bench:py:%d" % i, v)
t0 = time.perf_counter()
for i in range(ops):
    assert c.get("bench:py:%d" % (i % 1000)) == v
if mode == "ops":
    print("%.0f" % (ops / (time.perf_counter() - t0)))
PY
py() { # py plain|tls OPS MODE
    local ca="" port="$plain_port"
    [ "$1" = tls ] && { ca="$work/ca.pem"; port="$tls_port"; }
    python3 "$work/pymc_get.py" "$port" "$2" "$VALUE_SIZE" "$ca" "$3"
}
py_ir() { # py_ir plain|tls OPS: total instructions of the python process
    local ca="" port="$plain_port"
    [ "$1" = tls ] && { ca="$work/ca.pem"; port="$tls_port"; }
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$pyexe" "$work/pymc_get.py" "$port" "$2" "$VALUE_SIZE" "$ca" ir 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
pyexe="$(python3 -c 'import sys; print(sys.executable)')" # not a pyenv shim
echo "# pymemcache $(python3 -c 'import pymemcache; print(pymemcache.__version__)') (tls_context: Python's ssl, OpenSSL), get"
pp=(); pt=()
for _ in $(seq 1 "$RUNS"); do
    pp+=("$(py plain "$OPS" ops)"); pt+=("$(py tls "$OPS" ops)")
done
python3 - "${pp[*]}" "${pt[*]}" <<'PY'
import statistics, sys
p = statistics.median(map(float, sys.argv[1].split()))
t = statistics.median(map(float, sys.argv[2].split()))
print(f"pymemcache_get_ops_per_s\t{p:.0f}\t{t:.0f}\t{t / p:.2f}")
PY
lo=$((CG_OPS_LO / 4)); hi=$((CG_OPS_HI / 4))
pl="$(py_ir plain "$lo")"; ph="$(py_ir plain "$hi")"
tl_="$(py_ir tls "$lo")"; th="$(py_ir tls "$hi")"
python3 -c "p = ($ph - $pl) / ($hi - $lo); t = ($th - $tl_) / ($hi - $lo); print(f'pymemcache_get_ir\t{p:.0f}\t{t:.0f}\t{t / p:.2f}')"
