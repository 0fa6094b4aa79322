#!/usr/bin/env bash
# Short fuzzing pass for CI: every cargo-fuzz target of fuzz/ runs for
# FUZZ_SECONDS (default 10) from the kept seeds (corpus/ and regressions/),
# one libFuzzer process at a time. Installs cargo-fuzz when missing. Uses the
# nightly toolchain when rustup has one, else the stable one with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags). Exits non-zero when a target
# crashes or fails to build; prints the executions done per target.
#
#   bash fuzz/smoke.sh                      # all targets, 10 s each
#   FUZZ_SECONDS=60 bash fuzz/smoke.sh parse_response
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:$HOME/.cargo/bin"
secs="${FUZZ_SECONDS:-10}"
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=(parse_response parse_get_reply key_validation encode_roundtrip parse_meta parse_meta_many)
fi
start=$(date +%s)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
echo "== $(cargo fuzz --version) with ${fuzz[*]}${RUSTC_BOOTSTRAP:+ (RUSTC_BOOTSTRAP=1)}"

# -a: debug assertions and overflow checks (in mcrs too), under AddressSanitizer
echo "== building the targets"
"${fuzz[@]}" build -a

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  seeds=(corpus/"$t")
  [ -d regressions/"$t" ] && seeds+=(regressions/"$t")
  log="$work/$t.log"
  echo "== $t: ${secs}s"
  # the first corpus dir is the scratch one: the kept seeds are only read
  if "${fuzz[@]}" run -a "$t" "$work/$t" "${seeds[@]}" -- \
      -max_total_time="$secs" -max_len=9000 -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
    # the panic message and the input that caused it
    grep -E -A3 "panicked at|ERROR: (AddressSanitizer|libFuzzer)|Test unit written to" "$log" | head -40 || tail -40 "$log"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
  echo "$t: $status, ${runs:-?} executions, ${cov:-cov: ?}"
done

echo "== smoke fuzzing took $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashed: ${failed[*]} (inputs under fuzz/artifacts/<target>/; keep them in fuzz/regressions/<target>/)" >&2
  exit 1
fi
