#!/usr/bin/env bash
# mcrs against libmemcached (and pymemcache, and a raw-socket floor) on one
# private memcached: ops/s, instructions/op (callgrind), syscalls/op (strace),
# and the thread scaling of one shared mcrs_client.
# Writes docs/bench/results.md, docs/bench/results.tsv and docs/bench/ratios.png.
#
#   examples/bench.sh                       # the full run (about 4 minutes on 2 cores)
#   RUNS=3 OPS=50000 SKIP_CALLGRIND=1 examples/bench.sh
#
# Works from any directory. Environment (defaults in brackets):
#   RUNS [5]            alternating runs per client for ops/s (medians reported)
#   OPS [100000]        operations per ops/s run (mget100: keys, i.e. OPS/100 rounds)
#   VALUE_SIZE [100]    value bytes
#   SKIP_CALLGRIND=1    no instructions/op     SKIP_STRACE=1   no syscalls/op
#   SKIP_THREADS=1      no thread scaling      SKIP_PY=1       no pymemcache
#   SKIP_LOOP=1         no event-loop section  LOOP_DEPTH [100] gets in flight on the loop
#   LOOP_OPS [200000]   gets per loop / blocking run of that section (bench_loop)
#   SKIP_TLS=1          no TLS rows (examples/bench_tls.sh, appended to results.md)
#   SPIN [1]            1: while timing, a nice-19 busy loop keeps one vCPU from
#                       idling (see "Why a spinner" in results.md); 0: idle machine.
#                       With SPIN=1 an idle-machine section is measured as well.
#   IDLE_RUNS [3] IDLE_OPS [20000]      that idle-machine section (0 runs: skip it;
#                       mget100 and set_noreply use 10 x IDLE_OPS)
#   CG_OPS_LO [10000] CG_OPS_HI [20000] the two op counts whose difference
#                       gives instructions/op and syscalls/op
#   STRACE_REPS [3]     strace runs per point (median per syscall)
#   THREAD_GET_OPS [100000] THREAD_MGET_KEYS [1000000]  per thread, bench_threads
#   WAIT_QUIET [0]      wait up to this many seconds for other processes' load
#                       to drop below 25% of the CPUs before measuring
#   SHARED_BENCH [<repo>/../shared/bench]  lmc_bench.c, raw_floor.c, pymc_bench.py
#   OUT_DIR [<repo>/docs/bench]   CC [cc]   CARGO [cargo]   MCRS_SKIP_BUILD=1
set -euo pipefail

invocation="$0${*:+ $*}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
RUNS="${RUNS:-5}"
OPS="${OPS:-100000}"
VALUE_SIZE="${VALUE_SIZE:-100}"
SKIP_CALLGRIND="${SKIP_CALLGRIND:-0}"
SKIP_STRACE="${SKIP_STRACE:-0}"
SKIP_THREADS="${SKIP_THREADS:-0}"
SKIP_PY="${SKIP_PY:-0}"
SPIN="${SPIN:-1}"
WAIT_QUIET="${WAIT_QUIET:-0}"
IDLE_RUNS="${IDLE_RUNS:-3}"
IDLE_OPS="${IDLE_OPS:-20000}"
CG_OPS_LO="${CG_OPS_LO:-10000}"
CG_OPS_HI="${CG_OPS_HI:-20000}"
STRACE_REPS="${STRACE_REPS:-3}"
THREAD_GET_OPS="${THREAD_GET_OPS:-100000}"
THREAD_MGET_KEYS="${THREAD_MGET_KEYS:-1000000}"
SHARED_BENCH="${SHARED_BENCH:-$root/../shared/bench}"
OUT_DIR="${OUT_DIR:-$root/docs/bench}"
cc="${CC:-cc}"
cargo="${CARGO:-cargo}"
[ "$SPIN" = 1 ] || IDLE_RUNS=0 # the main section already is the idle machine
CG_N=$((CG_OPS_HI - CG_OPS_LO))
WORKLOADS=(set get mget100 set_noreply)
HOST=127.0.0.1

libdir="$root/target/release"
work="$root/target/bench"
bin="$work/bin"
logs="$work/logs"
mkdir -p "$bin" "$logs" "$OUT_DIR"
rm -f "$logs"/*
t_start=$(date +%s)
say() { echo "==> $*" >&2; }

# ---------------------------------------------------------------- tools
is_root=0
[ "$(id -u)" = 0 ] && is_root=1
apt_updated=0
apt_install() { # apt_install PACKAGE... (root only; quiet)
    [ "$is_root" = 1 ] || return 1
    if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}
need_cmd() { # need_cmd COMMAND PACKAGE: 0 when the command is (now) there
    command -v "$1" >/dev/null 2>&1 && return 0
    say "installing $2 (for $1)"
    apt_install "$2" && command -v "$1" >/dev/null 2>&1
}
need_cmd memcached memcached || { echo "bench.sh: memcached is missing" >&2; exit 1; }
need_cmd python3 python3 || { echo "bench.sh: python3 is missing" >&2; exit 1; }
if [ ! -e /usr/include/libmemcached/memcached.h ]; then
    say "installing libmemcached-dev"
    apt_install libmemcached-dev || { echo "bench.sh: libmemcached-dev is missing" >&2; exit 1; }
fi
if [ "$SKIP_CALLGRIND" != 1 ] && ! need_cmd valgrind valgrind; then
    say "valgrind unavailable: instructions/op skipped"; SKIP_CALLGRIND=1
fi
if [ "$SKIP_STRACE" != 1 ] && ! need_cmd strace strace; then
    say "strace unavailable: syscalls/op skipped"; SKIP_STRACE=1
fi
pip_install() { python3 -m pip install -q "$@" 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true; }
if [ "$SKIP_PY" != 1 ] && ! python3 -c 'import pymemcache' 2>/dev/null; then
    say "installing pymemcache"; pip_install pymemcache
    python3 -c 'import pymemcache' 2>/dev/null || { say "pymemcache unavailable: skipped"; SKIP_PY=1; }
fi
have_mpl=1
if ! python3 -c 'import matplotlib' 2>/dev/null; then
    say "installing matplotlib"; pip_install matplotlib
    python3 -c 'import matplotlib' 2>/dev/null || apt_install python3-matplotlib || true
    python3 -c 'import matplotlib' 2>/dev/null || { say "matplotlib unavailable: no chart"; have_mpl=0; }
fi

# ---------------------------------------------------------------- build
if [ "${MCRS_SKIP_BUILD:-0}" != 1 ]; then
    say "building libmcrs (cargo build --release)"
    (cd "$root" && "$cargo" build --release)
fi
for f in "$SHARED_BENCH/lmc_bench.c" "$SHARED_BENCH/raw_floor.c" "$libdir/libmcrs.so"; do
    [ -e "$f" ] || { echo "bench.sh: $f is missing" >&2; exit 1; }
done
say "compiling lmc_bench, raw_floor, bench, bench_threads, bench_loop (-O2)"
"$cc" -O2 -o "$bin/lmc_bench" "$SHARED_BENCH/lmc_bench.c" -lmemcached
"$cc" -O2 -o "$bin/raw_floor" "$SHARED_BENCH/raw_floor.c"
"$cc" -std=gnu11 -Wall -Wextra -O2 -I"$root/include" -o "$bin/mcrs_bench" "$here/bench.c" \
    -L"$libdir" -lmcrs -Wl,-rpath,"$libdir"
"$cc" -std=gnu11 -Wall -Wextra -O2 -pthread -I"$root/include" -o "$bin/bench_threads" \
    "$here/bench_threads.c" -L"$libdir" -lmcrs -Wl,-rpath,"$libdir"
"$cc" -std=gnu11 -Wall -Wextra -O2 -pthread -I"$root/include" -o "$bin/bench_loop" \
    "$here/bench_loop.c" -L"$libdir" -lmcrs -Wl,-rpath,"$libdir"

# ---------------------------------------------------------------- memcached + spinner
mc_pid=""
spin_pid=""
cleanup() {
    [ -n "$spin_pid" ] && kill "$spin_pid" 2>/dev/null
    [ -n "$mc_pid" ] && kill "$mc_pid" 2>/dev/null && wait "$mc_pid" 2>/dev/null
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pick_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
mc_args=(-l "$HOST" -t 1 -U 0 -m 256)
[ "$is_root" = 1 ] && mc_args+=(-u root)
PORT=""
for attempt in 1 2 3 4 5; do
    p="$(pick_port)"
    memcached "${mc_args[@]}" -p "$p" >"$logs/memcached.log" 2>&1 &
    mc_pid=$!
    for _ in $(seq 1 100); do
        kill -0 "$mc_pid" 2>/dev/null || break
        if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then PORT="$p"; break; fi
        sleep 0.05
    done
    [ -n "$PORT" ] && break
    kill "$mc_pid" 2>/dev/null; wait "$mc_pid" 2>/dev/null || true; mc_pid=""
done
[ -n "$PORT" ] || { echo "bench.sh: could not start memcached: $(cat "$logs/memcached.log")" >&2; exit 1; }
mc_cmd="memcached ${mc_args[*]} -p $PORT"
say "memcached pid $mc_pid on $HOST:$PORT ($mc_cmd)"

# busy % of all CPUs over 1 s, with nothing of ours running
machine_busy_1s() {
    local a b
    a="$(head -1 /proc/stat)"; sleep 1; b="$(head -1 /proc/stat)"
    awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x, " "); split(b, y, " "); t = 0; i = 0
        for (k = 2; k <= 9 && k <= n; k++) { t += y[k] - x[k]; if (k == 5 || k == 6) i += y[k] - x[k] }
        printf "%.0f", (t > 0 ? 100 * (t - i) / t : 0) }'
}
top_procs() { ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 >= 10 { printf "%s%s (%s%%)", (n++ ? ", " : ""), $2, $1 }'; }
bg_before="$(machine_busy_1s)"
waited=0
while [ "$bg_before" -ge 25 ] && [ "$waited" -lt "$WAIT_QUIET" ]; do
    [ "$waited" = 0 ] && say "background load ${bg_before}%: waiting up to ${WAIT_QUIET} s for a quieter machine"
    sleep 4; waited=$((waited + 5))
    bg_before="$(machine_busy_1s)"
done
bg_procs="$(top_procs)"
say "background load: ${bg_before}% busy${bg_procs:+ ($bg_procs)}"
t_measure=$(date +%s)
[ "$bg_before" -ge 25 ] && say "WARNING: other processes keep the machine ${bg_before}% busy: ops/s and thread numbers will be disturbed (instructions/op and syscalls/op much less)"

spin_on() {
    [ "$SPIN" = 1 ] && [ -z "$spin_pid" ] || return 0
    nice -n 19 bash -c 'while :; do :; done' &
    spin_pid=$!
}
spin_off() {
    [ -n "$spin_pid" ] || return 0
    kill "$spin_pid" 2>/dev/null; wait "$spin_pid" 2>/dev/null || true; spin_pid=""
}

# ---------------------------------------------------------------- helpers
client_bin() { case "$1" in lmc) echo "$bin/lmc_bench" ;; mcrs) echo "$bin/mcrs_bench" ;; esac; }
median() { sort -g | awk '{a[NR]=$1} END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
ratio() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 == 0) print "nan"; else printf f "\n", a / b }'; }
fmt() { awk -v a="$1" -v f="$2" 'BEGIN { if (a == "nan" || a == "") print "–"; else printf f "\n", a }'; }
warm() { "$bin/lmc_bench" "$HOST" "$PORT" 1000 "$VALUE_SIZE" set >/dev/null; }
ops_tsv="$logs/ops.tsv" # mode client workload run value
: >"$ops_tsv"
one_run() { # one_run MODE CLIENT WORKLOAD RUN OPS
    local out
    out="$("$(client_bin "$2")" "$HOST" "$PORT" "$5" "$VALUE_SIZE" "$3")"
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$(awk '{print $2}' <<<"$out")" >>"$ops_tsv"
}
ops_median() { awk -F'\t' -v m="$1" -v c="$2" -v w="$3" '$1==m && $2==c && $3==w {print $5}' "$ops_tsv" | median; }

# ---------------------------------------------------------------- ops/s
say "ops/s: $RUNS runs x (lmc, mcrs alternating; pymemcache; raw floor), OPS=$OPS VALUE_SIZE=$VALUE_SIZE SPIN=$SPIN"
mode=main
warm
spin_on
for r in $(seq 1 "$RUNS"); do
    for w in "${WORKLOADS[@]}"; do
        if [ $((r % 2)) = 1 ]; then order=(lmc mcrs); else order=(mcrs lmc); fi
        for c in "${order[@]}"; do one_run "$mode" "$c" "$w" "$r" "$OPS"; done
    done
    if [ "$SKIP_PY" != 1 ]; then
        python3 "$SHARED_BENCH/pymc_bench.py" "$HOST" "$PORT" "$OPS" "$VALUE_SIZE" |
            awk -v r="$r" -v m="$mode" '{ w = $1; sub(/_keys$/, "", w); printf "%s\tpymemcache\t%s\t%s\t%s\n", m, w, r, $2 }' >>"$ops_tsv"
    fi
    "$bin/raw_floor" "$HOST" "$PORT" "$OPS" "$VALUE_SIZE" |
        awk -v r="$r" -v m="$mode" '{ w = $1; sub(/_keys$/, "", w); printf "%s\traw\t%s\t%s\t%s\n", m, w, r, $2 }' >>"$ops_tsv"
    warm # raw_floor and pymc only touch part of bench:key:0..999
    echo "    run $r/$RUNS done ($(( $(date +%s) - t_start )) s)" >&2
done
spin_off

if [ "$IDLE_RUNS" -gt 0 ]; then
    say "ops/s without the spinner: $IDLE_RUNS runs x (lmc, mcrs), OPS=$IDLE_OPS"
    for r in $(seq 1 "$IDLE_RUNS"); do
        for w in "${WORKLOADS[@]}"; do
            if [ $((r % 2)) = 1 ]; then order=(lmc mcrs); else order=(mcrs lmc); fi
            # mget100 and set_noreply run 10x the ops: at 20000 they are over in a few ms
            n="$IDLE_OPS"; case "$w" in mget100 | set_noreply) n=$((IDLE_OPS * 10)) ;; esac
            for c in "${order[@]}"; do one_run idle "$c" "$w" "$r" "$n"; done
        done
    done
fi

# ---------------------------------------------------------------- set_noreply, pinned
# A noreply stream is bound by memcached's one worker thread, not by the
# client. Unpinned, where the scheduler puts the client next to memcached
# changes memcached's speed from run to run; with memcached pinned to CPU 0 and
# the client to CPU 1 both clients feed the same server the same way. Also
# counts memcached's CPU time per run (utime+stime ticks of /proc/PID/stat).
pin_tsv="$logs/pinned.tsv" # client run ops_per_s memcached_ticks
: >"$pin_tsv"
PIN_RUNS="${PIN_RUNS:-5}"
if [ "$PIN_RUNS" -gt 0 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    say "set_noreply pinned (memcached on CPU 0, client on CPU 1): $PIN_RUNS runs x (lmc, mcrs), $((OPS * 10)) ops"
    taskset -a -p -c 0 "$mc_pid" >/dev/null
    mc_ticks() { awk '{print $14 + $15}' "/proc/$mc_pid/stat"; }
    for r in $(seq 1 "$PIN_RUNS"); do
        if [ $((r % 2)) = 1 ]; then order=(lmc mcrs); else order=(mcrs lmc); fi
        for c in "${order[@]}"; do
            t0="$(mc_ticks)"
            out="$(taskset -c 1 "$(client_bin "$c")" "$HOST" "$PORT" "$((OPS * 10))" "$VALUE_SIZE" set_noreply)"
            printf '%s\t%s\t%s\t%s\n' "$c" "$r" "$(awk '{print $2}' <<<"$out")" "$(($(mc_ticks) - t0))" >>"$pin_tsv"
        done
    done
    taskset -a -p -c "0-$(($(nproc) - 1))" "$mc_pid" >/dev/null
fi

# ---------------------------------------------------------------- callgrind / strace
# The same program at CG_OPS_LO and CG_OPS_HI operations: the difference of the
# totals over CG_N operations is the cost of one operation (start-up, connect
# and exit cancel out). Ran with the spinner like the ops/s section, since
# libmemcached's non-blocking reads make more syscalls when replies are late.
metric_tsv="$logs/metrics.tsv" # metric client workload value_per_op
: >"$metric_tsv"
if [ "$SKIP_CALLGRIND" != 1 ]; then
    say "instructions/op: callgrind at $CG_OPS_LO and $CG_OPS_HI ops"
    spin_on
    cg_measure() { # cg_measure CLIENT WORKLOAD: appends its ir (and lib) metrics
        local c="$1" w="$2" n
        declare -A ir=() lib=()
        for n in "$CG_OPS_LO" "$CG_OPS_HI"; do
            warm
            valgrind --tool=callgrind --callgrind-out-file="$logs/cg.$c.$w.$n.callgrind" \
                "$(client_bin "$c")" "$HOST" "$PORT" "$n" "$VALUE_SIZE" "$w" \
                >"$logs/cg.$c.$w.$n.out" 2>"$logs/cg.$c.$w.$n.err"
            ir[$n]="$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$logs/cg.$c.$w.$n.err")"
            [ -n "${ir[$n]}" ] || { echo "bench.sh: no 'Collected' in $logs/cg.$c.$w.$n.err" >&2; exit 1; }
            # instructions inside the calls main makes into the client library
            # (inclusive), plus free() of the results for libmemcached: the
            # harness's own work (snprintf of the keys: ~760 Ir each) left out
            callgrind_annotate --inclusive=yes --tree=calling "$logs/cg.$c.$w.$n.callgrind" \
                >"$logs/cg.$c.$w.$n.annotate" 2>/dev/null || true
            lib[$n]="$(awk '
                /^ *[0-9,]+ .*\*  .*:main \[/ { inmain = 1; next }
                inmain && /^ *$/ { exit }
                inmain && / >   / { cost = $1; gsub(",", "", cost)
                    if ($0 ~ /:(mcrs|memcached)_[A-Za-z0-9_]* \(/ || $0 ~ /:free \(/) sum += cost }
                END { if (sum > 0) print sum }' "$logs/cg.$c.$w.$n.annotate")"
        done
        printf 'ir\t%s\t%s\t%s\n' "$c" "$w" "$(awk -v a="${ir[$CG_OPS_HI]}" -v b="${ir[$CG_OPS_LO]}" -v n="$CG_N" 'BEGIN {printf "%.1f", (a-b)/n}')" >>"$metric_tsv"
        if [ -n "${lib[$CG_OPS_LO]}" ] && [ -n "${lib[$CG_OPS_HI]}" ]; then
            printf 'lib\t%s\t%s\t%s\n' "$c" "$w" "$(awk -v a="${lib[$CG_OPS_HI]}" -v b="${lib[$CG_OPS_LO]}" -v n="$CG_N" 'BEGIN {printf "%.1f", (a-b)/n}')" >>"$metric_tsv"
        fi
        rm -f "$logs/cg.$c.$w".*.callgrind
        unset ir lib
    }
    for w in "${WORKLOADS[@]}"; do
        for c in lmc mcrs; do cg_measure "$c" "$w"; done
    done
    # mcrs only: the get loop reading into the caller's buffer (no allocation)
    cg_measure mcrs get_into
    # mcrs only: mget100 with the protocol forced, meta (mg q O + mn) and classic get lines
    cg_measure mcrs mget100_meta
    cg_measure mcrs mget100_classic
    spin_off
fi

strace_table() { # strace -c output -> "name calls errors"
    awk '$1 ~ /^[0-9.]+$/ && NF >= 5 { print $NF, $4, (NF == 6 ? $5 : 0) }' "$1"
}
mix_tsv="$logs/syscall_mix.tsv" # client workload syscall calls/op errors/op
: >"$mix_tsv"
if [ "$SKIP_STRACE" != 1 ]; then
    say "syscalls/op: strace -f -c at $CG_OPS_LO and $CG_OPS_HI ops"
    spin_on
    for w in "${WORKLOADS[@]}"; do
        for c in lmc mcrs; do
            for n in "$CG_OPS_LO" "$CG_OPS_HI"; do
                for k in $(seq 1 "$STRACE_REPS"); do
                    warm
                    strace -f -c -q -o "$logs/st.$c.$w.$n.$k.txt" \
                        "$(client_bin "$c")" "$HOST" "$PORT" "$n" "$VALUE_SIZE" "$w" >/dev/null
                    strace_table "$logs/st.$c.$w.$n.$k.txt" >"$logs/st.$c.$w.$n.$k.tab"
                done
                # per syscall: the median over the repetitions (a non-blocking
                # client's EAGAIN + poll count depends on timing)
                awk -v reps="$STRACE_REPS" '
                    { calls[$1] = calls[$1] " " $2; errs[$1] = errs[$1] " " $3; seen[$1]++ }
                    function med(s,   a, n, i, j, t) { n = split(s, a, " ")
                        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
                        return n % 2 ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2 }
                    END { for (s in calls) {
                            for (i = seen[s]; i < reps; i++) { calls[s] = calls[s] " 0"; errs[s] = errs[s] " 0" } # absent from a run: 0 there
                            print s, med(calls[s]), med(errs[s]) } }' \
                    "$logs"/st."$c.$w.$n".*.tab >"$logs/st.$c.$w.$n.tab"
            done
            awk -v n="$CG_N" -v c="$c" -v w="$w" '
                NR == FNR { calls[$1] = $2; errs[$1] = $3; next }
                { d = ($2 - calls[$1]) / n; e = ($3 - errs[$1]) / n
                  if ($1 == "total") printf "sys\t%s\t%s\t%.4f\n", c, w, d > "/dev/stderr"
                  else if (d >= 0.005) printf "%s\t%s\t%s\t%.3f\t%.3f\n", c, w, $1, d, e }' \
                "$logs/st.$c.$w.$CG_OPS_LO.tab" "$logs/st.$c.$w.$CG_OPS_HI.tab" >>"$mix_tsv" 2>>"$metric_tsv"
        done
    done
    spin_off
fi
metric() { local v; v="$(awk -F'\t' -v m="$1" -v c="$2" -v w="$3" '$1==m && $2==c && $3==w {print $4}' "$metric_tsv")"; echo "${v:-nan}"; }

# ---------------------------------------------------------------- threads
thr_tsv="$logs/threads.tsv" # mode workload threads run ops_per_s wall client_cpu server_cpu vcsw ivcsw busy_pct spin_cpu client_rq_wait server_rq_wait
: >"$thr_tsv"
thread_run() { # thread_run MODE WORKLOAD THREADS RUN OPS_PER_THREAD
    local out err
    err="$logs/thr.$1.$2.$3.$4.err"
    out="$(MCRS_BENCH_SERVER_PID="$mc_pid" MCRS_BENCH_SPIN_PID="$spin_pid" "$bin/bench_threads" "$HOST" "$PORT" "$5" "$3" "$2" "$VALUE_SIZE" 2>"$err")"
    awk -v m="$1" -v w="$2" -v t="$3" -v r="$4" -v v="$(awk '{print $3}' <<<"$out")" '
        /^# threads=/ { for (i = 4; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
                        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m, w, t, r, v, f["wall_s"], f["client_cpu_s"],
                               f["server_cpu_s"], f["vcsw"], f["ivcsw"], f["machine_busy_pct"], f["spin_cpu_s"],
                               f["client_rq_wait_s"], f["server_rq_wait_s"] }' "$err" >>"$thr_tsv"
}
thr_ops() { [ "$1" = get ] && echo "$2" || echo "$3"; }
if [ "$SKIP_THREADS" != 1 ]; then
    thread_modes=()
    [ "$SPIN" = 1 ] && thread_modes+=(spin)
    [ "$SPIN" != 1 ] || [ "$IDLE_RUNS" -gt 0 ] && thread_modes+=(idle)
    for tm in "${thread_modes[@]}"; do
        if [ "$tm" = spin ]; then n_runs="$RUNS"; gops="$THREAD_GET_OPS"; mkeys="$THREAD_MGET_KEYS"; spin_on
        else n_runs="${IDLE_RUNS:-$RUNS}"; [ "$SPIN" = 1 ] || n_runs="$RUNS"; gops=$((THREAD_GET_OPS / 5)); mkeys="$THREAD_MGET_KEYS"; fi
        say "threads ($tm): bench_threads with 1 and 2 threads sharing one client, $n_runs runs"
        for r in $(seq 1 "$n_runs"); do
            for w in mget100 get; do
                if [ $((r % 2)) = 1 ]; then order=(1 2); else order=(2 1); fi
                for t in "${order[@]}"; do thread_run "$tm" "$w" "$t" "$r" "$(thr_ops "$w" "$gops" "$mkeys")"; done
            done
        done
        # control: two processes with a client each, timed over the same interval
        for r in $(seq 1 "$n_runs"); do
            for w in mget100 get; do
                at="$(python3 -c 'import time; print("%.3f" % (time.time() + 0.5))')"
                n="$(thr_ops "$w" "$gops" "$mkeys")"
                MCRS_BENCH_START_AT="$at" MCRS_BENCH_SERVER_PID="$mc_pid" "$bin/bench_threads" "$HOST" "$PORT" "$n" 1 "$w" "$VALUE_SIZE" \
                    >"$logs/proc2.$tm.$w.$r.a" 2>"$logs/proc2.$tm.$w.$r.a.err" &
                pa=$!
                MCRS_BENCH_START_AT="$at" "$bin/bench_threads" "$HOST" "$PORT" "$n" 1 "$w" "$VALUE_SIZE" \
                    >"$logs/proc2.$tm.$w.$r.b" 2>"$logs/proc2.$tm.$w.$r.b.err"
                wait "$pa"
                # all keys of both over the union of their timed intervals (a sum
                # of the two rates would overstate when they do not overlap)
                printf '%s\t%s\tprocs2\t%s\t%s\t\t\t\t\t\t\n' "$tm" "$w" "$r" \
                    "$(cat "$logs/proc2.$tm.$w.$r.a.err" "$logs/proc2.$tm.$w.$r.b.err" | awk '/^# threads=/ {
                        for (i = 4; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
                        ops += f["ops"]; if (s == "" || f["start_real"] < s) s = f["start_real"]; if (f["end_real"] > e) e = f["end_real"] }
                        END { if (e > s) printf "%.0f", ops / (e - s); else print "nan" }')" >>"$thr_tsv"
                # the same with libmemcached: one lmc_bench, then two at once
                # (started together; aggregate = 2 x the slower one's rate)
                warm
                l1="$("$bin/lmc_bench" "$HOST" "$PORT" "$n" "$VALUE_SIZE" "$w" | awk '{print $2}')"
                "$bin/lmc_bench" "$HOST" "$PORT" "$n" "$VALUE_SIZE" "$w" >"$logs/lmc2.$tm.$w.$r.a" &
                pa=$!
                "$bin/lmc_bench" "$HOST" "$PORT" "$n" "$VALUE_SIZE" "$w" >"$logs/lmc2.$tm.$w.$r.b"
                wait "$pa"
                printf '%s\t%s\tlmc1\t%s\t%s\t\t\t\t\t\t\n' "$tm" "$w" "$r" "$l1" >>"$thr_tsv"
                printf '%s\t%s\tlmc2\t%s\t%s\t\t\t\t\t\t\n' "$tm" "$w" "$r" \
                    "$(cat "$logs/lmc2.$tm.$w.$r.a" "$logs/lmc2.$tm.$w.$r.b" | awk '{ if (m == "" || $2 < m) m = $2 } END { printf "%.0f", 2 * m }')" >>"$thr_tsv"
            done
        done
        spin_off
    done
    # lock waits: a thread that finds a lock taken sleeps in futex(2), so the
    # futex calls of 2 threads sharing one client bound its lock contention
    futex_tsv="$logs/futex.tsv" # workload threads futex_calls requests
    : >"$futex_tsv"
    if [ "$SKIP_STRACE" != 1 ]; then
        for w in get mget100; do
            for t in 1 2; do
                n="$(thr_ops "$w" $((THREAD_GET_OPS / 5)) $((THREAD_MGET_KEYS / 5)))"
                strace -f -c -q -o "$logs/futex.$w.$t.txt" \
                    "$bin/bench_threads" "$HOST" "$PORT" "$n" "$t" "$w" "$VALUE_SIZE" >/dev/null 2>&1
                reqs=$((n * t)); [ "$w" = mget100 ] && reqs=$((n * t / 100))
                printf '%s\t%s\t%s\t%s\n' "$w" "$t" "$(awk '$NF == "futex" {print $4}' "$logs/futex.$w.$t.txt" | head -1)" "$reqs" >>"$futex_tsv"
            done
        done
    fi
fi

# ---------------------------------------------------------------- event loop
# examples/bench_loop.c: gets through one mcrs_loop with LOOP_DEPTH in flight
# on one thread, against blocking mcrs_client_get on 1 and 8 threads sharing
# one client, alternating in each run; then instructions and syscalls per get
# of the loop (the CG_OPS_LO/HI difference, as above).
SKIP_LOOP="${SKIP_LOOP:-0}"
LOOP_DEPTH="${LOOP_DEPTH:-100}"
LOOP_OPS="${LOOP_OPS:-200000}"
loop_tsv="$logs/loop.tsv" # variant run gets_per_s
: >"$loop_tsv"
loop_section=""
if [ "$SKIP_LOOP" != 1 ]; then
    say "event loop: $RUNS runs x (loop with $LOOP_DEPTH in flight, blocking 1 thread, 8 threads), $LOOP_OPS gets"
    spin_on
    for r in $(seq 1 "$RUNS"); do
        for v in "loop_get $LOOP_DEPTH" "blocking_get 1" "blocking_get 8"; do
            # shellcheck disable=SC2086 # "workload N"
            "$bin/bench_loop" "$HOST" "$PORT" "$LOOP_OPS" "$VALUE_SIZE" $v |
                awk -v r="$r" '{ printf "%s\t%s\t%s\n", $1, r, $2 }' >>"$loop_tsv"
        done
    done
    loop_ops() { awk -F'\t' -v v="$1" '$1 == v {print $3}' "$loop_tsv" | median; }
    lo_loop="$(loop_ops loop_get)"; lo_b1="$(loop_ops blocking_get_1)"; lo_b8="$(loop_ops blocking_get_8)"
    lo_ir=nan; lo_sys=nan
    if [ "$SKIP_CALLGRIND" != 1 ]; then
        declare -A lir=()
        for n in "$CG_OPS_LO" "$CG_OPS_HI"; do
            valgrind --tool=callgrind --callgrind-out-file=/dev/null \
                "$bin/bench_loop" "$HOST" "$PORT" "$n" "$VALUE_SIZE" loop_get "$LOOP_DEPTH" \
                >/dev/null 2>"$logs/cg.loop.$n.err"
            lir[$n]="$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$logs/cg.loop.$n.err")"
        done
        lo_ir="$(awk -v a="${lir[$CG_OPS_HI]}" -v b="${lir[$CG_OPS_LO]}" -v n="$CG_N" 'BEGIN {printf "%.1f", (a-b)/n}')"
    fi
    if [ "$SKIP_STRACE" != 1 ]; then
        declare -A lsys=()
        for n in "$CG_OPS_LO" "$CG_OPS_HI"; do
            strace -f -c -q -o "$logs/st.loop.$n.txt" \
                "$bin/bench_loop" "$HOST" "$PORT" "$n" "$VALUE_SIZE" loop_get "$LOOP_DEPTH" >/dev/null
            lsys[$n]="$(awk '$NF == "total" {print $4}' "$logs/st.loop.$n.txt")"
        done
        lo_sys="$(awk -v a="${lsys[$CG_OPS_HI]}" -v b="${lsys[$CG_OPS_LO]}" -v n="$CG_N" 'BEGIN {printf "%.4f", (a-b)/n}')"
    fi
    spin_off
    lmc_get_ir="$(metric ir lmc get)"
    loop_section="$(
        echo "| variant | gets/s (median of $RUNS) | loop ÷ this |"
        echo "|---|--:|--:|"
        echo "| mcrs_loop, $LOOP_DEPTH in flight, 1 thread | $(fmt "$lo_loop" %.0f) | 1.00 |"
        echo "| blocking mcrs_client_get, 1 thread | $(fmt "$lo_b1" %.0f) | **$(fmt "$(ratio "$lo_loop" "$lo_b1")" %s)** |"
        echo "| blocking mcrs_client_get, 8 threads, one client | $(fmt "$lo_b8" %.0f) | **$(fmt "$(ratio "$lo_loop" "$lo_b8")" %s)** |"
        echo
        echo "Through the loop: $(fmt "$lo_ir" %.0f) instructions per get (libmemcached's blocking get: $(fmt "$lmc_get_ir" %.0f), ratio **$(fmt "$(ratio "$lo_ir" "$lmc_get_ir")" %s)**), $(fmt "$lo_sys" %.3f) syscalls per get (whole program, the $CG_OPS_LO/$CG_OPS_HI difference)."
    )"
fi

# ---------------------------------------------------------------- report
bg_after="$(machine_busy_1s)"
say "writing $OUT_DIR/results.md"
res_tsv="$OUT_DIR/results.tsv"
md="$OUT_DIR/results.md"
printf 'workload\tlmc_ops\tmcrs_ops\tops_ratio\tpymemcache_ops\traw_ops\tlmc_ir\tmcrs_ir\tir_ratio\tlmc_lib_ir\tmcrs_lib_ir\tlib_ir_ratio\tlmc_sys\tmcrs_sys\tsys_ratio\tlmc_idle_ops\tmcrs_idle_ops\tidle_ops_ratio\n' >"$res_tsv"
table="$(
    echo "| workload | libmemcached ops/s | mcrs ops/s | ops/s mcrs/lmc | pymemcache ops/s | raw floor ops/s | libmemcached instr/op | mcrs instr/op | instr mcrs/lmc | libmemcached instr/op in library | mcrs instr/op in library | in library mcrs/lmc | libmemcached syscalls/op | mcrs syscalls/op | syscalls mcrs/lmc |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for w in "${WORKLOADS[@]}"; do
        lo="$(ops_median main lmc "$w")"; mo="$(ops_median main mcrs "$w")"
        po="$(ops_median main pymemcache "$w")"; ro="$(ops_median main raw "$w")"
        li="$(metric ir lmc "$w")"; mi="$(metric ir mcrs "$w")"
        ll="$(metric lib lmc "$w")"; ml="$(metric lib mcrs "$w")"
        ls="$(metric sys lmc "$w")"; ms="$(metric sys mcrs "$w")"
        lio="$(ops_median idle lmc "$w")"; mio="$(ops_median idle mcrs "$w")"
        label="$w"; [ "$w" = mget100 ] && label="mget100 (per key)"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$lo" "$mo" "$(ratio "$mo" "$lo" %.3f)" "$po" "$ro" \
            "$li" "$mi" "$(ratio "$mi" "$li" %.3f)" "$ll" "$ml" "$(ratio "$ml" "$ll" %.3f)" "$ls" "$ms" "$(ratio "$ms" "$ls" %.3f)" "$lio" "$mio" "$(ratio "$mio" "$lio" %.3f)" >>"$res_tsv"
        echo "| $label | $(fmt "$lo" %.0f) | $(fmt "$mo" %.0f) | **$(fmt "$(ratio "$mo" "$lo")" %s)** | $(fmt "$po" %.0f) | $(fmt "$ro" %.0f) | $(fmt "$li" %.0f) | $(fmt "$mi" %.0f) | **$(fmt "$(ratio "$mi" "$li")" %s)** | $(fmt "$ll" %.0f) | $(fmt "$ml" %.0f) | **$(fmt "$(ratio "$ml" "$ll")" %s)** | $(fmt "$ls" %.3f) | $(fmt "$ms" %.3f) | **$(fmt "$(ratio "$ms" "$ls")" %s)** |"
    done
)"
idle_table=""
if [ "$IDLE_RUNS" -gt 0 ]; then
    idle_table="$(
        echo "| workload | libmemcached ops/s | mcrs ops/s | mcrs/lmc |"
        echo "|---|--:|--:|--:|"
        for w in "${WORKLOADS[@]}"; do
            lio="$(ops_median idle lmc "$w")"; mio="$(ops_median idle mcrs "$w")"
            echo "| $w | $(fmt "$lio" %.0f) | $(fmt "$mio" %.0f) | $(fmt "$(ratio "$mio" "$lio")" %s) |"
        done
    )"
fi
mix_table=""
if [ -s "$mix_tsv" ]; then
    mix_table="$(
        echo "| workload | client | syscalls per op (calls, failed calls in brackets) |"
        echo "|---|---|---|"
        for w in "${WORKLOADS[@]}"; do
            for c in lmc mcrs; do
                name=libmemcached; [ "$c" = mcrs ] && name=mcrs
                echo "| $w | $name | $(awk -F'\t' -v c="$c" -v w="$w" '$1==c && $2==w {
                    s = s (s ? ", " : "") $3 " " sprintf("%.3f", $4) ($5 >= 0.0005 ? sprintf(" (%.3f EAGAIN/err)", $5) : "") }
                    END { print (s ? s : "–") }' "$mix_tsv") |"
            done
        done
    )"
fi

thr_med() { # thr_med MODE WORKLOAD THREADS COLUMN(5=ops 6=wall 7=ccpu 8=scpu 9=vcsw 10=ivcsw 11=busy 12=spin cpu 13/14=client/server run-queue wait) [wall|kops]
    awk -F'\t' -v m="$1" -v w="$2" -v t="$3" -v col="$4" -v per="${5:-}" '$1==m && $2==w && $3==t && $col != "" {
        v = $col; if (per == "wall") v = $col / $6; else if (per == "kops") v = $col / ($5 * $6 / 1000); print v }' "$thr_tsv" | median
}
thr_section=""
scaling_line=""
if [ -s "$thr_tsv" ]; then
    thr_section="$(
        echo "| machine | workload | 1 thread ops/s | 2 threads ops/s | scaling | 2 processes ops/s (control) | libmemcached 1 → 2 processes (control) | client CPU, cores (1t → 2t) | memcached CPU, cores (1t → 2t) | client+server CPU µs/op (1t → 2t) | round trip spent waiting for a CPU (1t → 2t) | involuntary ctx switches per 1k ops (1t → 2t) | machine busy % (1t → 2t) |"
        echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        for tm in spin idle; do
            for w in mget100 get; do
                o1="$(thr_med "$tm" "$w" 1 5)"; [ "$o1" = nan ] && continue
                o2="$(thr_med "$tm" "$w" 2 5)"; op="$(thr_med "$tm" "$w" procs2 5)"
                l1="$(thr_med "$tm" "$w" lmc1 5)"; l2="$(thr_med "$tm" "$w" lmc2 5)"
                rng2="$(awk -F'\t' -v m="$tm" -v w="$w" '$1==m && $2==w && $3==2 { if (lo == "" || $5 < lo) lo = $5; if ($5 > hi) hi = $5 } END { print lo "\t" hi }' "$thr_tsv")"
                rngp="$(awk -F'\t' -v m="$tm" -v w="$w" '$1==m && $2==w && $3=="procs2" { if (lo == "" || $5 < lo) lo = $5; if ($5 > hi) hi = $5 } END { print lo "\t" hi }' "$thr_tsv")"
                c1="$(thr_med "$tm" "$w" 1 7 wall)"; c2="$(thr_med "$tm" "$w" 2 7 wall)"
                s1="$(thr_med "$tm" "$w" 1 8 wall)"; s2="$(thr_med "$tm" "$w" 2 8 wall)"
                u1="$(awk -v a="$c1" -v b="$s1" -v o="$o1" 'BEGIN{printf "%.2f", (a+b)/o*1e6}')"
                u2="$(awk -v a="$c2" -v b="$s2" -v o="$o2" 'BEGIN{printf "%.2f", (a+b)/o*1e6}')"
                i1="$(thr_med "$tm" "$w" 1 10 kops)"; i2="$(thr_med "$tm" "$w" 2 10 kops)"
                b1="$(thr_med "$tm" "$w" 1 11)"; b2="$(thr_med "$tm" "$w" 2 11)"
                p1="$(thr_med "$tm" "$w" 1 12 wall)"; p2="$(thr_med "$tm" "$w" 2 12 wall)"
                # run-queue wait (client + memcached) per wall second and thread:
                # the share of a round trip spent runnable without a CPU
                q1="$(thr_med "$tm" "$w" 1 13 wall)"; q2="$(thr_med "$tm" "$w" 2 13 wall)"
                r1="$(thr_med "$tm" "$w" 1 14 wall)"; r2="$(thr_med "$tm" "$w" 2 14 wall)"
                wq1="$(awk -v a="$q1" -v b="$r1" 'BEGIN{printf "%.0f", 100 * (a + b) / 1}')"
                wq2="$(awk -v a="$q2" -v b="$r2" 'BEGIN{printf "%.0f", 100 * (a + b) / 2}')"
                mname="with spinner"; [ "$tm" = idle ] && mname="no spinner"
                name="$w"; [ "$w" = mget100 ] && name="mget100 (keys/s)"
                echo "| $mname | $name | $(fmt "$o1" %.0f) | $(fmt "$o2" %.0f) | **$(ratio "$o2" "$o1")** | $(fmt "$op" %.0f) ($(ratio "$op" "$o1")×) | $(fmt "$l1" %.0f) → $(fmt "$l2" %.0f) ($(ratio "$l2" "$l1")×) | $(fmt "$c1" %.2f) → $(fmt "$c2" %.2f) | $(fmt "$s1" %.2f) → $(fmt "$s2" %.2f) | $u1 → $u2 | $wq1% → $wq2% | $(fmt "$i1" %.1f) → $(fmt "$i2" %.1f) | $(fmt "$b1" %.0f) → $(fmt "$b2" %.0f) |"
                printf 'threads\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tm" "$w" "$o1" "$o2" "$(ratio "$o2" "$o1" %.3f)" "$op" \
                    "$c1" "$c2" "$s1" "$s2" "$u1" "$u2" "$i1" "$i2" "$b1" "$b2" "$p1" "$p2" "$wq1" "$wq2" "$l1" "$l2" "$rng2" "$rngp" >>"$logs/threads_summary.tsv"
            done
        done
    )"
    scaling_line="$(awk -F'\t' '{ printf "%s%s %s: %.2f", (NR>1 ? "; " : ""), ($2 == "spin" ? "with spinner" : "no spinner"), $3, $6 }' "$logs/threads_summary.tsv" 2>/dev/null || true)"
fi

# Why the scaling is what it is: rules over the medians above, so the text
# always matches the numbers of this run.
explain_threads() {
    # throughput = (client + memcached CPU) / (CPU per op), so
    # scaling = (CPU used with 2 threads / with 1) x (CPU per op with 1 / with 2):
    # the text says which factor kept it down and why, from the measured medians.
    awk -F'\t' -v bg0="$bg_before" -v bg1="$bg_after" -v ncpu="$(nproc)" '
    function f(x, d) { return sprintf("%." d "f", x) }
    function min(a, b) { return a < b ? a : b }
    {
        tm = $2; w = $3; o1 = $4; o2 = $5; sc = $6; op = $7; c1 = $8; c2 = $9; s1 = $10; s2 = $11
        u1 = $12; u2 = $13; i1 = $14; i2 = $15; b1 = $16; b2 = $17; p1 = $18; p2 = $19; q1 = $20; q2 = $21; l1 = $22; l2 = $23; lo2 = $24; hi2 = $25; lop = $26; hip = $27
        if (p1 == "nan" || p1 == "") p1 = 0
        if (p2 == "nan" || p2 == "") p2 = 0
        unitop = (w == "get") ? "op" : "key"
        # cores used by anything but client, memcached and our spinner
        x1 = b1 * ncpu / 100 - c1 - s1 - p1; x2 = b2 * ncpu / 100 - c2 - s2 - p2
        if (x1 < 0) x1 = 0
        if (x2 < 0) x2 = 0
        t1 = c1 + s1; t2 = c2 + s2
        fc = (t1 > 0) ? t2 / t1 : 0; fu = (u2 > 0) ? u1 / u2 : 0
        printf "- **%s %s: ×%s** (%s → %s %s/s). ", w, (tm == "spin" ? "with the spinner" : "without spinner"), f(sc, 2), f(o1, 0), f(o2, 0), (w == "get" ? "ops" : "keys")
        printf "Client + memcached used %s → %s cores (client %s → %s, memcached %s → %s), other processes %s → %s", \
            f(t1, 2), f(t2, 2), f(c1, 2), f(c2, 2), f(s1, 2), f(s2, 2), f(x1, 2), f(x2, 2)
        if (tm == "spin") printf ", the spinner %s → %s (it only fills idle time)", f(p1, 2), f(p2, 2)
        printf "; CPU per %s %s → %s µs. So ×%s = ×%s more CPU used × ×%s from the cost per %s. ", unitop, f(u1, 2), f(u2, 2), f(sc, 2), f(fc, 2), f(fu, 2), unitop
        # ceiling predicted from the one-thread run: the cores left after other
        # processes, and memcached -t 1 (one worker: at most 1 core)
        avail = ncpu - x2
        ceil_cores = (t1 > 0) ? avail / t1 : 0
        ceil_mc = (s1 > 0) ? 1 / s1 : 0
        ceil = min(ceil_cores, ceil_mc)
        if (sc < 1.6) {
            printf "With one thread client + memcached already use %s cores and memcached alone %s: the second thread can at most bring the cores left after other processes (%s of %d) into use, a ceiling of ×%s, and memcached'"'"'s one worker thread caps it at ×%s (1 / %s). ", \
                f(t1, 2), f(s1, 2), f(avail, 2), ncpu, f(ceil_cores, 2), f(ceil_mc, 2), f(s1, 2)
            if (s2 >= 0.85) printf "memcached reached %s cores with two threads: it is the bottleneck. ", f(s2, 2)
            if (q1 >= 35 && t1 <= 1.2) printf "With one thread, client and memcached use about one core together and a round trip spends %s%% of its time runnable but waiting for a CPU (schedstat run-queue wait): they take turns on one vCPU, each waking the other where it runs, so a reply never has to wake another CPU. ", q1
            if (q2 >= 20 && q2 > q1 + 5) printf "The cores are contended: with two threads a round trip spends %s%% of its time runnable but waiting for a CPU (%s%% with one thread). ", q2, q1
            else if (q1 >= 35 && q2 < q1) printf "With two threads the work spreads over both vCPUs (waiting for a CPU drops to %s%%), ", q2
            if (fu < 0.77) printf "%s %s costs %s× the CPU it costs with one thread (involuntary context switches per 1k ops %s → %s), most likely because wake-ups now cross vCPUs (an inter-processor interrupt, which on a VM goes through the hypervisor) and caches are cold: that eats the second core. ", (q1 >= 35 && q2 < q1 ? "and each" : "Each"), unitop, f(u2 / u1, 1), f(i1, 1), f(i2, 1)
            else if (q1 >= 35 && q2 < q1) printf "at about the same CPU per %s. ", unitop
            if (s2 < 0.85 && q2 < 20 && fu >= 0.77 && ceil >= 1.6) printf "Neither memcached nor the cores are saturated: the round trips are latency-bound. "
        } else if (sc > 2.05) {
            printf "Better than linear: one thread is bound by the latency of its round trips (wake-ups of sleeping vCPUs, see \"Why a spinner\"), not by CPU; a second thread overlaps its waits with the first one'"'"'s and keeps the vCPUs awake, so each %s even gets cheaper. ", unitop
        } else {
            printf "Close to linear. "
        }
        if (op != "" && op + 0 > 0) {
            r = o2 / op
            printf "Control: two processes with one client each reach %s (×%s of one thread); ", f(op, 0), f(op / o1, 2)
            if (r >= 0.85) printf "the shared mcrs_client gives %s of that, so sharing one client is not what limits the scaling. ", f(r, 2)
            else if (hi2 + 0 >= lop + 0) printf "the shared mcrs_client gives %s of that by the medians, but the runs overlap (2 threads %s–%s, 2 processes %s–%s): no sign that sharing one client is what limits the scaling. ", f(r, 2), f(lo2, 0), f(hi2, 0), f(lop, 0), f(hip, 0)
            else printf "the shared mcrs_client gives only %s of that (every run below: 2 threads %s–%s, 2 processes %s–%s): sharing one client costs throughput here (pool or lock contention in mcrs?), worth a look. ", f(r, 2), f(lo2, 0), f(hi2, 0), f(lop, 0), f(hip, 0)
        }
        if (l1 != "" && l1 + 0 > 0 && l2 + 0 > 0) printf "libmemcached, one process vs two: %s → %s (×%s), %s.", f(l1, 0), f(l2, 0), f(l2 / l1, 2), (l2 / l1 < 1.6 ? "so the limit is the machine and memcached, not the client library" : "for comparison")
        printf "\n"
    }
    END { if (bg0 != "") printf "\nBackground load (processes not ours, 1 s before the run and after it): %s%% and %s%% of the %d CPUs.\n", bg0, bg1, ncpu }' "$logs/threads_summary.tsv"
}

cpu_model="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
settings="RUNS=$RUNS OPS=$OPS VALUE_SIZE=$VALUE_SIZE SPIN=$SPIN WAIT_QUIET=$WAIT_QUIET IDLE_RUNS=$IDLE_RUNS IDLE_OPS=$IDLE_OPS CG_OPS_LO=$CG_OPS_LO CG_OPS_HI=$CG_OPS_HI THREAD_GET_OPS=$THREAD_GET_OPS THREAD_MGET_KEYS=$THREAD_MGET_KEYS SKIP_CALLGRIND=$SKIP_CALLGRIND SKIP_STRACE=$SKIP_STRACE SKIP_THREADS=$SKIP_THREADS SKIP_PY=$SKIP_PY"
elapsed=$(( $(date +%s) - t_start ))
waited_s=$(( t_measure - t_start ))
{
    echo "# mcrs vs libmemcached: benchmark results"
    echo
    echo "Written by \`examples/bench.sh\` (every number and sentence below comes from the run; rerun it rather than editing)."
    echo
    echo "- command: \`$settings $invocation\` (from \`$root\`; took ${elapsed} s$( [ "$waited" -gt 0 ] && echo ", of which ${waited_s} s building and waiting for a quiet machine"))"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- machine: nproc $(nproc), CPU: ${cpu_model:-unknown}, $(uname -sr)"
    echo "- background load (processes not ours, over 1 s): ${bg_before}% of the CPUs busy before the run${bg_procs:+ (ps: $bg_procs)}, ${bg_after}% after$( [ "$bg_before" -ge 25 ] || [ "$bg_after" -ge 25 ] && echo ' — **the machine was shared with other work: ops/s and the thread section are disturbed; instructions/op and syscalls/op much less**')"
    echo "- server: $(memcached -V), run as \`$mc_cmd\` (one worker thread, TCP on loopback)"
    echo "- clients: libmemcached $(pkg-config --modversion libmemcached 2>/dev/null || echo '?') (\`lmc_bench.c\`), mcrs $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted src changes') (\`examples/bench.c\`), pymemcache $(python3 -c 'import pymemcache; print(pymemcache.__version__)' 2>/dev/null || echo '–') (\`pymc_bench.py\`), raw floor (\`raw_floor.c\`: precomputed requests, one write + reads per op)"
    echo
    echo "**Machine note:** absolute times on shared 2-core machines are noisy (other sessions' processes, a VM whose idle vCPUs sleep); ratios from one run are not. The instruction and syscall counts are deterministic up to timing effects and are the numbers to compare."
    echo
    echo "## Per workload"
    echo
    echo "ops/s: median of $RUNS runs of $OPS ops (value $VALUE_SIZE bytes), libmemcached and mcrs alternating (lmc first on odd runs, mcrs first on even runs), pymemcache and the raw floor once per run; the raw floor has no set_noreply. mget100 counts keys (100 per request). instructions/op: \`valgrind --tool=callgrind\`, (total Ir at $CG_OPS_HI ops − total Ir at $CG_OPS_LO ops) / $CG_N (the \"Collected\" total: the whole program), the keys stored before each run so every get hits. \"In library\": the same difference over only the calls that main makes into the client library (inclusive, from \`callgrind_annotate --inclusive=yes --tree=calling\`), plus libmemcached's \`free()\` of returned values (mcrs frees through \`mcrs_value_free\`, counted as a library call); it leaves out what both harnesses do alike, mostly \`snprintf\` of the key (about 760 instructions per op), which pulls the whole-program ratio toward 1. syscalls/op: \`strace -f -c -q\`, the same difference. Ratios are mcrs / libmemcached: below 1 is better for instructions and syscalls, above 1 is better for ops/s."
    echo
    echo "$table"
    echo
    if [ "$SKIP_CALLGRIND" != 1 ]; then
        echo "The get loop with \`mcrs_client_get_into\` (the value read into the caller's buffer, nothing allocated; mcrs only, \`bench ... get_into\`): $(metric ir mcrs get_into) instructions/op whole program, $(metric lib mcrs get_into) in the library (plain get: $(metric ir mcrs get) / $(metric lib mcrs get))."
        echo
        echo "mget100 by protocol (mcrs only, \`bench ... mget100_meta\` / \`mget100_classic\`; the table's mget100 is the default, classic), per key: meta $(metric ir mcrs mget100_meta) instructions whole program, $(metric lib mcrs mget100_meta) in the library; classic $(metric ir mcrs mget100_classic) / $(metric lib mcrs mget100_classic)."
        echo
    fi
    echo "![mcrs / libmemcached ratios](ratios.png)"
    echo
    if [ "$SPIN" = 1 ]; then
        echo "### Why a spinner"
        echo
        echo "The table's ops/s were measured with a \`nice -n 19\` busy loop running (SPIN=1). This machine is a VM: when both vCPUs go idle, as they do in a request/reply ping-pong where client and server take turns, each wake-up goes through the hypervisor and costs tens of µs, so a blocking set/get takes ~60 µs whatever the client does (about 16k ops/s for libmemcached and mcrs alike, table below; the raw floor does no better). That measures the VM, not the client. One lowest-priority spinner keeps a vCPU from halting: it yields to the benchmark at once and gives numbers 5-10× higher that depend on the clients' own cost. (Two spinners, one per vCPU, make runs erratic: the benchmark then has to preempt them.)"
        echo
        if [ -n "$idle_table" ]; then
            echo "Without the spinner: median of $IDLE_RUNS alternating runs of $IDLE_OPS ops ($((IDLE_OPS * 10)) for mget100 and set_noreply); about 16k ops/s for set and get when nothing else runs on the machine, more when other processes keep the vCPUs awake:"
            echo
            echo "$idle_table"
            echo
        fi
    fi
    if [ -s "$pin_tsv" ]; then
        hz="$(getconf CLK_TCK)"
        pin_med() { awk -F'\t' -v c="$1" -v k="$2" '$1==c {print $k}' "$pin_tsv" | median; }
        # memcached busy: its CPU seconds over the run's wall seconds (ops / ops_per_s)
        busy() { awk -v t="$1" -v hz="$hz" -v r="$2" -v n="$((OPS * 10))" 'BEGIN { if (r > 0) printf "%.0f%%", 100 * (t / hz) / (n / r); else print "?" }'; }
        echo "### set_noreply, pinned"
        echo
        echo "A noreply stream is bound by memcached's one worker thread, not by the client. Here memcached runs pinned to CPU 0 and each client to CPU 1 (\`taskset\`), $PIN_RUNS alternating runs of $((OPS * 10)) sets, medians; memcached CPU is its utime+stime over the run:"
        echo
        echo "| client | ops/s | memcached CPU per run (s) | memcached busy |"
        echo "|---|--:|--:|--:|"
        for c in lmc mcrs; do
            r="$(pin_med "$c" 3)"; t="$(pin_med "$c" 4)"
            echo "| $( [ "$c" = lmc ] && echo libmemcached || echo mcrs ) | $(printf '%.0f' "$r") | $(awk -v t="$t" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }') | $(busy "$t" "$r") |"
        done
        echo
        bl="$(busy "$(pin_med lmc 4)" "$(pin_med lmc 3)" | tr -d '%')"; bm="$(busy "$(pin_med mcrs 4)" "$(pin_med mcrs 3)" | tr -d '%')"
        if awk -v a="$bl" -v b="$bm" 'BEGIN { exit !(a >= 85 && b >= 85) }'; then
            echo "Pinned, mcrs/lmc = $(ratio "$(pin_med mcrs 3)" "$(pin_med lmc 3)"). memcached is busy nearly all the time with either client, so both go as fast as it does: the ratio can only say whether a client keeps a saturated server fed, and the unpinned set_noreply ratios above move with where the scheduler puts the client relative to memcached."
        else
            echo "Pinned, mcrs/lmc = $(ratio "$(pin_med mcrs 3)" "$(pin_med lmc 3)"); memcached was busy $bl% (libmemcached) and $bm% (mcrs) of the time, so this run was not simply bound by the server."
        fi
        echo
    fi
    if [ -n "$mix_table" ]; then
        echo "## Syscall mix"
        echo
        echo "Per operation (mget100: per key), from the same strace difference; calls under 0.005/op are left out. Under strace the client runs slower, so a non-blocking client finds its reply ready more often than untraced: libmemcached's EAGAIN + poll counts here are a lower bound."
        echo
        echo "$mix_table"
        echo
    fi
    if [ -n "$thr_section" ]; then
        echo "## Threads sharing one mcrs_client"
        echo
        echo "\`examples/bench_threads.c\`: 1 or 2 threads share ONE \`mcrs_client\` (its pool gives each thread a connection); mget100 is \`mcrs_client_get_many\` of 100 keys ($THREAD_MGET_KEYS keys per thread), get is a plain get ($THREAD_GET_OPS per thread with the spinner, $((THREAD_GET_OPS / 5)) idle). Medians of the runs (1 and 2 threads alternating). scaling = 2-thread ops/s ÷ 1-thread ops/s. The control runs two processes with one client each, timed over the same interval. CPU: the client's getrusage and memcached's /proc/PID/stat over the timed phase only, in cores (CPU seconds per wall second). Waiting for a CPU: run-queue wait (schedstat: runnable, no CPU) of the client threads and memcached's threads, as a share of the threads' time. Machine busy is /proc/stat over the same interval (it includes the spinner)."
        echo
        echo "$thr_section"
        echo
        echo "Scaling: $scaling_line"
        echo
        if [ -s "${futex_tsv:-}" ]; then
            echo "Lock waits (\`strace -f -c\`, \`futex\` calls: a thread that finds a lock taken sleeps in futex; starting and joining threads makes a few, counted by the 1-thread run): $(awk -F'\t' '{ f[$1, $2] = $3; r[$1, $2] = $4; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
                END { for (i = 1; i <= n; i++) { w = order[i]; x = (r[w, 2] > 0 ? (f[w, 2] - f[w, 1]) / r[w, 2] : 0); if (x > m) m = x
                        printf "%s%s %d futex calls with 1 thread, %d with 2 threads in %d requests (%.4f more per request)", (i > 1 ? "; " : ""), w, f[w, 1], f[w, 2], r[w, 2], x }
                      if (m < 0.01) print ". Beyond thread start-up, two threads sharing one client make less than one futex call per 100 requests: they do not queue on a lock on the hot path."
                      else printf ". With two threads, up to %.3f more futex calls per request: some requests wait for a lock.\n", m }' "$futex_tsv")"
            echo
        fi
        echo "### Why"
        echo
        explain_threads
        echo
    fi
    if [ -n "$loop_section" ]; then
        echo "## The event loop (many gets in flight)"
        echo
        echo "\`examples/bench_loop.c\`: \`mcrs_loop_get\` with $LOOP_DEPTH requests in flight on one thread (each callback submits the next get), against blocking \`mcrs_client_get\` on 1 and 8 threads sharing one client; $LOOP_OPS gets per run, the three alternating in each run."
        echo
        echo "$loop_section"
        echo
    fi
    echo "## Reproduce"
    echo
    echo "\`examples/bench.sh\` (defaults above; \`SKIP_CALLGRIND=1 SKIP_STRACE=1\` for ops/s only, \`SPIN=0\` for the idle machine only). Raw outputs: \`target/bench/logs/\`; the table as TSV: \`docs/bench/results.tsv\`."
} >"$md"

echo
echo "$table"
[ -n "$idle_table" ] && { echo; echo "idle machine:"; echo "$idle_table"; }
[ -n "$mix_table" ] && { echo; echo "$mix_table"; }
[ -n "$thr_section" ] && { echo; echo "$thr_section"; echo; echo "Scaling: $scaling_line"; echo; explain_threads; }
[ -n "$loop_section" ] && { echo; echo "$loop_section"; }
echo

if [ "${SKIP_TLS:-0}" != 1 ]; then
    say "TLS against plaintext (examples/bench_tls.sh)"
    if tls_out="$(SKIP_PY="$SKIP_PY" "$here/bench_tls.sh")"; then
        { echo; echo "## TLS against plaintext (examples/bench_tls.sh)"; echo
          echo '```'; echo "$tls_out"; echo '```'; } >>"$md"
        echo "$tls_out"
    else
        say "bench_tls.sh failed: no TLS rows"
    fi
fi

if [ "$have_mpl" = 1 ]; then
    say "drawing $OUT_DIR/ratios.png"
    python3 "$here/bench_chart.py" "$res_tsv" "$OUT_DIR/ratios.png"
fi
say "done in $(( $(date +%s) - t_start )) s: $md"
