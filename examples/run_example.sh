#!/usr/bin/env bash
# Build libmcrs, compile an example (examples/basic.c unless named) against it,
# and run it.
#
#   examples/run_example.sh            # starts a private memcached on a free loopback port
#   examples/run_example.sh loop       # the event-loop example (examples/loop.c)
#   examples/run_example.sh go:lease   # a Go example (bindings/go/examples/lease), with go run
#   examples/run_example.sh node:lease # a Node example (bindings/node/examples/lease.js)
#   MCRS_SERVERS=127.0.0.1:11211 examples/run_example.sh   # uses your servers
#
# Works from any directory. Environment: CC (default cc), CARGO (default cargo),
# MCRS_SKIP_BUILD=1 to reuse an existing target/release build.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cc="${CC:-cc}"
cargo="${CARGO:-cargo}"
libdir="$root/target/release"
out_dir="$root/target/examples"
name="${1:-basic}"
case "$name" in
go:* | node:*)
    lang="${name%%:*}" ex="${name#*:}"
    if [ "$lang" = go ]; then
        dir="$root/bindings/go"
        [ -d "$dir/examples/$ex" ] || { echo "run_example.sh: no example $dir/examples/$ex" >&2; exit 2; }
        run=(go run "./examples/$ex")
    else
        dir="$root/bindings/node"
        [ -f "$dir/examples/$ex.js" ] || { echo "run_example.sh: no example $dir/examples/$ex.js" >&2; exit 2; }
        run=(node "examples/$ex.js")
    fi
    if [ "${MCRS_SKIP_BUILD:-0}" != 1 ]; then
        echo "==> building libmcrs (cargo build --release)" >&2
        (cd "$root" && "${CARGO:-cargo}" build --release)
    fi
    if [ "$lang" = node ] && [ ! -f "$dir/build/Release/mcrs.node" ]; then
        echo "==> building the Node addon (npm ci)" >&2
        (cd "$dir" && npm ci --no-audit --no-fund --silent)
    fi
    cd "$dir"
    if [ -n "${MCRS_SERVERS:-}" ]; then
        exec "${run[@]}"
    fi
    echo "==> MCRS_SERVERS is not set: starting a private memcached" >&2
    exec bash "$root/tests/c/with_memcached.sh" \
        bash -c 'echo "==> running against $MCRS_TEST_SERVER" >&2; MCRS_SERVERS="$MCRS_TEST_SERVER" exec "$@"' _ "${run[@]}"
    ;;
esac
if [ ! -f "$here/$name.c" ]; then
    echo "run_example.sh: no example $here/$name.c" >&2
    exit 2
fi
exe="$out_dir/$name"

if ! command -v "$cc" >/dev/null; then
    bash "$root/scripts/deps.sh"
fi
if [ "${MCRS_SKIP_BUILD:-0}" != 1 ]; then
    echo "==> building libmcrs (cargo build --release)" >&2
    (cd "$root" && "$cargo" build --release)
fi
for f in "$root/include/mcrs.h" "$libdir/libmcrs.so"; do
    if [ ! -e "$f" ]; then
        echo "run_example.sh: $f is missing; run 'cargo build --release' in $root" >&2
        exit 1
    fi
done

echo "==> compiling examples/$name.c" >&2
mkdir -p "$out_dir"
"$cc" -std=c11 -Wall -Wextra -Werror -O2 -I"$root/include" "$here/$name.c" \
    -L"$libdir" -lmcrs -Wl,-rpath,"$libdir" -o "$exe"

if [ -n "${MCRS_SERVERS:-}" ]; then
    echo "==> running against $MCRS_SERVERS" >&2
    exec "$exe"
fi

echo "==> MCRS_SERVERS is not set: starting a private memcached" >&2
if ! command -v memcached >/dev/null; then
    # a fresh machine: install memcached (and the other test tools) first
    bash "$root/scripts/deps.sh"
fi
# with_memcached.sh stops memcached when the example exits and returns its exit code.
exec bash "$root/tests/c/with_memcached.sh" \
    bash -c 'echo "==> running against $MCRS_TEST_SERVER" >&2; MCRS_SERVERS="$MCRS_TEST_SERVER" exec "$0"' "$exe"
