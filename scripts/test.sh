#!/usr/bin/env bash
# Runs every test of the project: lints, Rust unit and integration tests, the
# header check, the C suite under ctest (static, shared, and sanitized), the
# Python interop tests, the Python package's tests and the Go and Node binding
# suites. Each suite starts the memcached servers it needs on free loopback
# ports and stops them.
#
#   scripts/test.sh          # everything
#   MCRS_QUICK=1 scripts/test.sh   # skip the sanitizer, valgrind and fuzz passes
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/deps.sh

suites=0
step() { suites=$((suites + 1)); printf '\n==== %s ====\n' "$*"; }

step "rustfmt / clippy / rustdoc"
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# doc comments (they also become the C header's comments): no broken links
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --document-private-items --quiet

step "build (regenerates include/mcrs.h)"
cargo build --release --quiet
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  if ! git -C "$root" diff --exit-code -- include/mcrs.h; then
    echo "include/mcrs.h is out of date: commit the regenerated header" >&2
    exit 1
  fi
  if [ -n "$(git -C "$root" ls-files --others --exclude-standard -- include)" ]; then
    echo "include/ has uncommitted generated files" >&2
    exit 1
  fi
fi

step "C ABI: exports and the header against bindings/c/abi (abidiff), and the check's self-test"
# an intended break: bump the ABI version in Cargo.toml, then bindings/c/abi_check.sh --update
bash bindings/c/abi_check.sh
bash bindings/c/abi_check.sh --self-test

step "cargo test"
# the workspace's default members: the library and the mcrs tool (cli/, its
# tests run target/release/mcrs against memcached servers they start)
cargo test --release --quiet 2>&1 | tail -n +1
# the cargo bench benchmarks, a few iterations each (a smoke test, no timing)
cargo test --release --quiet --benches 2>&1 | grep -v '^$'

step "C tests (ctest: static and shared library)"
cmake -S tests/c -B target/ctest -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build target/ctest -j 2 >/dev/null
ctest --test-dir target/ctest --output-on-failure -j 2

if [ -z "${MCRS_QUICK:-}" ]; then
  step "C tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S tests/c -B target/ctest-asan -DCMAKE_BUILD_TYPE=Debug -DMCRS_SANITIZE=address,undefined >/dev/null
  cmake --build target/ctest-asan -j 2 >/dev/null
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir target/ctest-asan --output-on-failure -j 2

  step "C tests under valgrind (errors and definite leaks fail)"
  cmake -S tests/c -B target/ctest-valgrind -DCMAKE_BUILD_TYPE=Debug -DMCRS_VALGRIND=ON >/dev/null
  cmake --build target/ctest-valgrind -j 2 >/dev/null
  ctest --test-dir target/ctest-valgrind --output-on-failure -j 2
fi

if [ -x bindings/c/test_install.sh ]; then
  step "C packaging: install, pkg-config and CMake consumers, the seed examples"
  bash bindings/c/test_install.sh
fi

step "examples: the blocking and the event-loop C examples on a private memcached"
MCRS_SKIP_BUILD=1 bash examples/run_example.sh basic
MCRS_SKIP_BUILD=1 bash examples/run_example.sh loop
MCRS_SKIP_BUILD=1 bash examples/run_example.sh lease
MCRS_SKIP_BUILD=1 bash examples/run_example.sh lease_loop

step "Python interoperability (pymemcache)"
python3 -m pytest -q tests/interop

step "Python package mcrs (bindings/python): pip install, then its tests"
# builds the C extension against target/release/libmcrs.so (see bindings/python/README.md);
# PIP_BREAK_SYSTEM_PACKAGES lets pip install into a Debian-managed system python
PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --force-reinstall --no-deps ./bindings/python 2>&1 \
  | grep -v "Running pip as the 'root' user" || true
python3 -c 'import mcrs._mcrs' # fails the suite if the install did not happen
python3 -m pytest -q bindings/python/tests

if [ -d bindings/go ] && [ -f bindings/go/go.mod ]; then
  step "Go binding"
  if command -v go >/dev/null || [ -x /usr/local/go/bin/go ]; then
    (cd bindings/go && PATH="$PATH:/usr/local/go/bin" go vet ./... && PATH="$PATH:/usr/local/go/bin" go test -count=1 ./...)
    # the concurrency tests (event loop, ctx cancels, Close) under the race detector
    (cd bindings/go && PATH="$PATH:/usr/local/go/bin" go test -race -count=1 -run 'Ctx|Stalled|Many|Concurrent|Close|Cluster' .)
  else
    echo "go is not installed: cannot run the Go suite" >&2; exit 1
  fi
fi

if [ -d bindings/node ] && [ -f bindings/node/package.json ]; then
  step "Node binding"
  # npm ci builds the N-API addon (node-gyp against the local node headers, .npmrc
  # nodedir=/usr) and links it to target/release/libmcrs.so (built above)
  (cd bindings/node && { [ -f build/Release/mcrs.node ] && [ build/Release/mcrs.node -nt src/addon.c ] \
      || npm ci --no-audit --no-fund --silent; } && node --test test/)
  if [ -z "${MCRS_QUICK:-}" ]; then
    step "Node addon under AddressSanitizer"
    asan_dir=$(mktemp -d)
    gcc -std=gnu11 -g -O1 -fsanitize=address -fno-omit-frame-pointer -fPIC -shared -DNAPI_VERSION=8 \
      -I/usr/include/node -Iinclude bindings/node/src/addon.c -o "$asan_dir/mcrs.node" \
      -Ltarget/release -lmcrs -Wl,-rpath,"$PWD/target/release"
    (cd bindings/node && ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
      MCRS_NODE_ADDON="$asan_dir/mcrs.node" node --test test/)
    rm -rf "$asan_dir"
  fi
fi

if [ -z "${MCRS_QUICK:-}" ] && [ -x fuzz/smoke.sh ]; then
  step "fuzz smoke (short cargo-fuzz runs of every target)"
  bash fuzz/smoke.sh
fi

printf '\n==== all suites passed ====\n'
# (set -e stops at the first failing suite, so reaching here means none failed)
echo "$suites passed, 0 failed"
