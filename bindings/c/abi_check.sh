#!/usr/bin/env bash
# Checks the C ABI of libmcrs against the baseline committed in bindings/c/abi/.
#
#   bindings/c/abi_check.sh              # check target/release/libmcrs.so + include/mcrs.h
#   bindings/c/abi_check.sh --update     # regenerate the baseline (after adding functions,
#                                        # or after an ABI version bump)
#   bindings/c/abi_check.sh --self-test  # mutated copies must fail, additions must pass
#
# What is compared (libabigail's abidiff, Debian package abigail-tools):
#   abi/libmcrs.abi       abidw of the (stripped) library: its SONAME and exported symbols
#   abi/mcrs-header.abi   abidw of a stub library compiled with -g from include/mcrs.h
#                         (bindings/c/abi/header.py): every prototype, enum value, callback
#                         typedef as a C compiler sees them
#   abi/macros.txt        the constant macros (MCRS_NOREPLY_ON 1, ...)
# and the export policy: the library exports exactly the functions the header declares,
# each named mcrs_*.
#
# Compatible, and passing without --update: added functions, added enum values, added
# macros, renamed parameters. Failing: a removed export, a changed prototype, enum
# value, callback or macro value, a non-mcrs_ export, a SONAME that differs from the
# baseline's. An intended break: bump the ABI version in Cargo.toml (the major version;
# while it is 0, the minor), rebuild, run --update (which refuses an incompatible
# baseline under an unchanged SONAME unless given --force), and commit the baseline.
#
# Environment: MCRS_LIB (default target/release/libmcrs.so), MCRS_HEADER (default
# include/mcrs.h), MCRS_ABI_DIR (default bindings/c/abi), CC (default cc).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
lib="${MCRS_LIB:-$root/target/release/libmcrs.so}"
header="${MCRS_HEADER:-$root/include/mcrs.h}"
abi_dir="${MCRS_ABI_DIR:-$here/abi}"
cc="${CC:-cc}"
header_py="$here/abi/header.py"
abidw_opts=(--no-corpus-path --no-comp-dir-path --no-show-locs --no-elf-needed --no-architecture
    --type-id-style hash) # hash: ids that stay put when types are added (small diffs, easy merges)

die() {
    echo "abi_check.sh: $*" >&2
    exit 2
}

for tool in abidw abidiff readelf nm strip python3 "$cc"; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool not found (abidw/abidiff: apt-get install abigail-tools; scripts/deps.sh installs it)"
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/mcrs-abi.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

soname_of() { readelf -d "$1" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p'; }
baseline_soname() { sed -n "s/^<abi-corpus [^>]*soname='\([^']*\)'.*/\1/p" "$1" | head -n 1; }

# dump LIB HEADER OUTDIR: the three baseline files of LIB and HEADER
dump() {
    local l="$1" h="$2" out="$3" soname
    mkdir -p "$out"
    soname="$(soname_of "$l")"
    [ -n "$soname" ] || { echo "$l has no SONAME" >&2; return 1; }
    # the symbols as installed (install.sh strips the library): no debug info, no paths
    strip --strip-all -o "$tmp/stripped.so" "$l"
    abidw "${abidw_opts[@]}" --out-file "$out/libmcrs.abi" "$tmp/stripped.so"
    mkdir -p "$tmp/inc"
    cp "$h" "$tmp/inc/mcrs.h"
    python3 "$header_py" stub "$tmp/inc/mcrs.h" >"$tmp/stub.c"
    "$cc" -std=c11 -g -O0 -shared -fPIC -I"$tmp/inc" "$tmp/stub.c" -Wl,-soname,"$soname" \
        -o "$tmp/libmcrs-header.so"
    abidw "${abidw_opts[@]}" --out-file "$out/mcrs-header.abi" "$tmp/libmcrs-header.so"
    python3 "$header_py" macros "$h" >"$out/macros.txt"
}

# policy LIB HEADER: exports == header functions, all mcrs_*
policy() {
    local l="$1" h="$2" bad=0
    nm -D --defined-only "$l" | awk '$2 ~ /^[A-Z]$/ {print $3}' | sed 's/@.*//' | sort -u >"$tmp/exports"
    python3 "$header_py" functions "$h" | sort -u >"$tmp/declared"
    if grep -v '^mcrs_' "$tmp/exports" >"$tmp/foreign"; then
        echo "FAIL  exports outside the mcrs_ namespace:"
        sed 's/^/        /' "$tmp/foreign"
        bad=1
    fi
    if [ -n "$(comm -23 "$tmp/exports" "$tmp/declared")" ]; then
        echo "FAIL  exported but not declared in $(basename "$h"):"
        comm -23 "$tmp/exports" "$tmp/declared" | sed 's/^/        /'
        bad=1
    fi
    if [ -n "$(comm -13 "$tmp/exports" "$tmp/declared")" ]; then
        echo "FAIL  declared in $(basename "$h") but not exported by the library:"
        comm -13 "$tmp/exports" "$tmp/declared" | sed 's/^/        /'
        bad=1
    fi
    [ "$bad" = 0 ] && echo "ok    export policy: $(wc -l <"$tmp/exports") functions, all mcrs_*, all declared"
    return "$bad"
}

# compare BASEDIR CURDIR: 0 when CURDIR is compatible with BASEDIR
compare() {
    local base="$1" cur="$2" bad=0 rc bs cs
    bs="$(baseline_soname "$base/libmcrs.abi")"
    cs="$(baseline_soname "$cur/libmcrs.abi")"
    if [ "$bs" != "$cs" ]; then
        echo "FAIL  the SONAME is $cs, the baseline's is $bs: after an intended ABI version"
        echo "      bump, regenerate the baseline (bindings/c/abi_check.sh --update) and commit it"
        return 1
    fi
    echo "ok    SONAME $cs"
    for f in libmcrs mcrs-header; do
        rc=0
        abidiff --no-added-syms "$base/$f.abi" "$cur/$f.abi" >"$tmp/$f.diff" 2>&1 || rc=$?
        if [ "$rc" = 0 ]; then
            echo "ok    abidiff $f.abi"
        else
            # rc bits: 1 error, 2 usage, 4 ABI change, 8 incompatible change
            echo "FAIL  abidiff $f.abi (exit $rc$([ $((rc & 8)) != 0 ] && echo ', incompatible')):"
            sed 's/^/        /' "$tmp/$f.diff" | head -n 60
            bad=1
        fi
    done
    if [ -n "$(comm -23 "$base/macros.txt" "$cur/macros.txt")" ]; then
        echo "FAIL  macros removed or changed (baseline value first):"
        comm -3 "$base/macros.txt" "$cur/macros.txt" | sed 's/^\t/  now: /; s/^/        /'
        bad=1
    else
        echo "ok    macros ($(wc -l <"$cur/macros.txt"))"
    fi
    return "$bad"
}

# additions BASEDIR CURDIR: a note on what the baseline does not record yet
additions() {
    local base="$1" cur="$2" new
    new="$(comm -13 <(sed -n "s/.*<elf-symbol name='\([^']*\)'.*/\1/p" "$base/libmcrs.abi" | sort -u) \
        <(sed -n "s/.*<elf-symbol name='\([^']*\)'.*/\1/p" "$cur/libmcrs.abi" | sort -u))"
    if [ -n "$new" ]; then
        echo "note  $(wc -l <<<"$new") function(s) not in the baseline yet (compatible additions):"
        sed 's/^/        /' <<<"$new"
        echo "      record them with bindings/c/abi_check.sh --update"
    fi
}

check() {
    [ -f "$lib" ] || die "$lib is missing (cargo build --release)"
    [ -f "$header" ] || die "$header is missing"
    [ -f "$abi_dir/libmcrs.abi" ] || die "no baseline in $abi_dir (bindings/c/abi_check.sh --update)"
    echo "==> ABI of $lib and $header against $abi_dir"
    local bad=0
    policy "$lib" "$header" || bad=1
    dump "$lib" "$header" "$tmp/cur" || exit 2
    compare "$abi_dir" "$tmp/cur" || bad=1
    if [ "$bad" != 0 ]; then
        echo "ABI check failed. If the break is intended, bump the ABI version in Cargo.toml"
        echo "(the major version; while it is 0, the minor), rebuild, run"
        echo "bindings/c/abi_check.sh --update and commit bindings/c/abi/."
        return 1
    fi
    additions "$abi_dir" "$tmp/cur"
    echo "ABI check passed"
}

update() {
    local force="${1:-}"
    [ -f "$lib" ] || die "$lib is missing (cargo build --release)"
    policy "$lib" "$header" || die "fix the export policy first"
    dump "$lib" "$header" "$tmp/cur" || exit 2
    if [ -f "$abi_dir/libmcrs.abi" ] && [ "$force" != --force ] &&
        [ "$(baseline_soname "$abi_dir/libmcrs.abi")" = "$(baseline_soname "$tmp/cur/libmcrs.abi")" ]; then
        if ! compare "$abi_dir" "$tmp/cur"; then
            die "refusing to record an incompatible ABI under the same SONAME: bump the ABI version in Cargo.toml (or pass --force)"
        fi
    fi
    mkdir -p "$abi_dir"
    cp "$tmp/cur/libmcrs.abi" "$tmp/cur/mcrs-header.abi" "$tmp/cur/macros.txt" "$abi_dir/"
    echo "==> baseline written to $abi_dir ($(baseline_soname "$abi_dir/libmcrs.abi"))"
}

# ---- --self-test: break copies of the header and a stand-in library, expect failures
self_test() {
    local passed=0 failed=0 st="$tmp/self" soname
    mkdir -p "$st"
    soname="$(soname_of "$lib" 2>/dev/null || true)"
    soname="${soname:-libmcrs.so.0}"
    # a stand-in for libmcrs.so that exports exactly what HEADER declares (plus EXTRA C code)
    build_lib() { # HEADER OUT SONAME [EXTRA]
        mkdir -p "$st/inc.$$"
        cp "$1" "$st/inc.$$/mcrs.h"
        { python3 "$header_py" stub "$1"; printf '%s\n' "${4:-}"; } >"$st/lib.c"
        "$cc" -std=c11 -O0 -shared -fPIC -I"$st/inc.$$" "$st/lib.c" -Wl,-soname,"$3" -o "$2"
    }
    cp "$header" "$st/base.h"
    build_lib "$st/base.h" "$st/base.so" "$soname"
    MCRS_LIB="$st/base.so" MCRS_HEADER="$st/base.h" MCRS_ABI_DIR="$st/abi" bash "$0" --update >/dev/null
    # drop_fn NAME < HEADER: HEADER without the declaration of function NAME
    drop_fn() {
        awk -v fn="$1" '!skip && $0 ~ ("^[^(]*[ *]" fn "[(]") {skip = 1}
            skip {if (index($0, ";")) skip = 0; next} {print}'
    }
    # case NAME EXPECT(pass|fail) SED-SCRIPT|drop:FUNCTION [SONAME] [EXTRA-C] [REMOVE-FROM-LIB]
    case_() {
        local name="$1" expect="$2" script="$3" so="${4:-$soname}" extra="${5:-}" drop="${6:-}"
        local h="$st/$name.h" l="$st/$name.so" rc=0
        case "$script" in
            drop:*) drop_fn "${script#drop:}" <"$st/base.h" >"$h" ;;
            *) sed -e "$script" "$st/base.h" >"$h" ;;
        esac
        if [ -n "$drop" ]; then
            drop_fn "$drop" <"$h" >"$st/lib-$name.h"
            build_lib "$st/lib-$name.h" "$l" "$so" "$extra"
        else
            build_lib "$h" "$l" "$so" "$extra"
        fi
        if [ "$script" != "" ] && cmp -s "$h" "$st/base.h"; then
            echo "FAIL  self-test '$name': the mutation did not apply"
            failed=$((failed + 1))
            return
        fi
        MCRS_LIB="$l" MCRS_HEADER="$h" MCRS_ABI_DIR="$st/abi" bash "$0" >"$st/$name.log" 2>&1 || rc=$?
        if { [ "$expect" = pass ] && [ "$rc" = 0 ]; } || { [ "$expect" = fail ] && [ "$rc" = 1 ]; }; then
            echo "PASS  $name: $([ "$expect" = pass ] && echo passes || echo fails) as it should$([ "$expect" = fail ] && echo " ($(grep -m1 '^FAIL' "$st/$name.log" | sed 's/^FAIL *//'))")"
            passed=$((passed + 1))
        else
            echo "FAIL  $name: expected to $expect, exit $rc"
            sed 's/^/      | /' "$st/$name.log" | head -n 30
            failed=$((failed + 1))
        fi
    }
    first_fn="$(python3 "$header_py" functions "$st/base.h" | awk '/_free$/ && !n {print; n = 1}')"
    case_ unchanged pass ''
    case_ "added function" pass 's/^\(const char \*mcrs_version(void);\)$/\1\nint mcrs_zz_added(int x);/'
    case_ "added enum value" pass 's/^\(  MCRS_STATUS_OK = 0,\)$/\1\n  MCRS_STATUS_ZZ_ADDED = 9999,/'
    case_ "added macro" pass 's/^\(#define MCRS_MAX_KEY_LEN .*\)$/\1\n#define MCRS_ZZ_ADDED 7/'
    case_ "renamed parameter" pass 's/^\(const char \*mcrs_status_str(enum mcrs_status\) [a-z_]*);/\1 renamed);/'
    case_ "removed function ($first_fn)" fail "drop:$first_fn"
    case_ "export missing from the library ($first_fn)" fail '' "" "" "$first_fn"
    case_ "changed parameter type (uint32_t exptime -> uint64_t)" fail 's/uint32_t exptime/uint64_t exptime/'
    case_ "changed return type (mcrs_version)" fail 's/^const char \*mcrs_version(void);/const unsigned char *mcrs_version(void);/'
    case_ "changed enum value (MCRS_STATUS_NOT_FOUND 1 -> 99)" fail 's/MCRS_STATUS_NOT_FOUND = 1,/MCRS_STATUS_NOT_FOUND = 99,/'
    case_ "changed callback typedef (mcrs_status_cb)" fail 's/(\*mcrs_status_cb)(void \*userdata, enum mcrs_status status)/(*mcrs_status_cb)(void *userdata, int status, int extra)/'
    case_ "changed macro (MCRS_NOREPLY_ON 1 -> 3)" fail 's/^#define MCRS_NOREPLY_ON 1$/#define MCRS_NOREPLY_ON 3/'
    case_ "export outside mcrs_" fail '' "" 'int helper_leaked(void) { return 0; }'
    case_ "SONAME changed, baseline not regenerated" fail '' "libmcrs.so.99"
    # the real library, relinked from libmcrs.a with a version script: with every export
    # it passes against the committed baseline, without one it fails
    local archive
    archive="$(dirname "$lib")/libmcrs.a"
    if [ -f "$archive" ] && [ -f "$abi_dir/libmcrs.abi" ] && [ -n "$(soname_of "$lib" 2>/dev/null)" ]; then
        relink() { # OUT [EXPORT-TO-DROP]
            { echo "{ global:"; python3 "$header_py" functions "$header" | grep -vx "${2:-}" |
                sed 's/$/;/'; echo "local: *; };"; } >"$st/relink.map"
            "$cc" -shared -o "$1" -Wl,--whole-archive "$archive" -Wl,--no-whole-archive \
                -Wl,--version-script="$st/relink.map" -Wl,-soname,"$(soname_of "$lib")" \
                -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
        }
        real_case() { # NAME EXPECT LIB
            local rc=0
            MCRS_LIB="$3" bash "$0" >"$st/real.log" 2>&1 || rc=$?
            if { [ "$2" = pass ] && [ "$rc" = 0 ]; } || { [ "$2" = fail ] && [ "$rc" = 1 ]; }; then
                echo "PASS  $1: $([ "$2" = pass ] && echo passes || echo fails) as it should"
                [ "$2" = fail ] && grep -A1 '^FAIL\|\[D\]' "$st/real.log" | grep -v '^--' | sed 's/^/      | /'
                passed=$((passed + 1))
            else
                echo "FAIL  $1: expected to $2, exit $rc"
                sed 's/^/      | /' "$st/real.log" | head -n 30
                failed=$((failed + 1))
            fi
        }
        relink "$st/real-all.so" && real_case "libmcrs.a relinked with every export" pass "$st/real-all.so"
        relink "$st/real-drop.so" mcrs_client_flush_all &&
            real_case "libmcrs.a relinked without mcrs_client_flush_all" fail "$st/real-drop.so"
    else
        echo "SKIP  the relinked real library ($archive, a SONAME and a baseline are needed)"
    fi
    # --update refuses an incompatible baseline under the same SONAME
    local rc=0
    drop_fn "$first_fn" <"$st/base.h" >"$st/upd.h"
    build_lib "$st/upd.h" "$st/upd.so" "$soname"
    cp -r "$st/abi" "$st/abi-upd"
    MCRS_LIB="$st/upd.so" MCRS_HEADER="$st/upd.h" MCRS_ABI_DIR="$st/abi-upd" bash "$0" --update >"$st/upd.log" 2>&1 || rc=$?
    if [ "$rc" != 0 ] && cmp -s "$st/abi/libmcrs.abi" "$st/abi-upd/libmcrs.abi"; then
        echo "PASS  --update refuses a removed function under the same SONAME"
        passed=$((passed + 1))
    else
        echo "FAIL  --update recorded a removed function under the same SONAME"
        failed=$((failed + 1))
    fi
    # an intended break: the same removal under a bumped SONAME is recorded, then passes
    rc=0
    build_lib "$st/upd.h" "$st/upd-bumped.so" "libmcrs.so.99"
    MCRS_LIB="$st/upd-bumped.so" MCRS_HEADER="$st/upd.h" MCRS_ABI_DIR="$st/abi-upd" bash "$0" --update >"$st/upd.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] && MCRS_LIB="$st/upd-bumped.so" MCRS_HEADER="$st/upd.h" MCRS_ABI_DIR="$st/abi-upd" bash "$0" >>"$st/upd.log" 2>&1 || rc=$?
    if [ "$rc" = 0 ] && grep -q "soname='libmcrs.so.99'" "$st/abi-upd/libmcrs.abi"; then
        echo "PASS  a removed function under a bumped SONAME: --update records it, the check then passes"
        passed=$((passed + 1))
    else
        echo "FAIL  --update after a SONAME bump (exit $rc)"
        sed 's/^/      | /' "$st/upd.log" | head -n 20
        failed=$((failed + 1))
    fi
    echo "self-test: $passed passed, $failed failed"
    [ "$failed" = 0 ]
}

case "${1:-}" in
    "") check ;;
    --update) update "${2:-}" ;;
    --self-test) self_test ;;
    *) die "usage: $0 [--update [--force] | --self-test]" ;;
esac
