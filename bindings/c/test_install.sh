#!/usr/bin/env bash
# Tests bindings/c/install.sh the way a C project consumes mcrs.
#
#   bindings/c/test_install.sh
#
# 1. installs mcrs into a temporary prefix (install.sh "$(mktemp -d)/prefix"), and
#    once more staged with DESTDIR, checking the layout and the generated files;
# 2. builds examples/basic.c, examples/cluster.c and examples/serde.c (the seed's
#    three examples) with -std=c11 -Wall -Wextra -Werror
#      - with pkg-config (PKG_CONFIG_PATH=<prefix>/lib/pkgconfig), against libmcrs.so
#        and against libmcrs.a,
#      - with CMake (bindings/c/consumer, find_package(mcrs CONFIG) with
#        CMAKE_PREFIX_PATH=<prefix>), against mcrs::mcrs and mcrs::mcrs_static;
#    and a small C++17 program that includes mcrs.h (pkg-config, $CXX, default c++);
# 3. runs every binary, without LD_LIBRARY_PATH, against private memcached servers
#    started by tests/c/with_memcached.sh (two for cluster.c);
# and prints "N passed, N failed". Exits non-zero when anything failed.
#
# Environment: CC (default cc), CXX (default c++), CARGO, MCRS_SKIP_BUILD=1 (install the existing
# target/release build), MCRS_KEEP_TMP=1 (keep the temporary directory),
# VERBOSE=1 (show every example's output, not only the first build's).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cc="${CC:-cc}"
export CC="$cc"
with_memcached="$root/tests/c/with_memcached.sh"
examples=(basic cluster serde)
cflags=(-std=c11 -Wall -Wextra -Werror -O2)

passed=0
failed=0
failures=()

for tool in "$cc" pkg-config cmake memcached readelf; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "test_install.sh: $tool not found (scripts/deps.sh installs the test tools)" >&2
        exit 1
    fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/mcrs-test-install.XXXXXX")" || exit 1
if [ "${MCRS_KEEP_TMP:-0}" = 1 ]; then
    echo "==> keeping $work" >&2
else
    trap 'rm -rf "$work"' EXIT
fi
prefix="$work/prefix"
log="$work/step.log"

pass() {
    passed=$((passed + 1))
    echo "PASS  $1"
}
fail() {
    failed=$((failed + 1))
    failures+=("$1")
    echo "FAIL  $1"
    if [ -s "$log" ]; then
        tail -n 40 "$log" | sed 's/^/      | /'
    fi
}
# step NAME COMMAND...: runs COMMAND with its output in $log, counts the result.
step() {
    local name="$1"
    shift
    if "$@" >"$log" 2>&1; then
        pass "$name"
        return 0
    fi
    fail "$name"
    return 1
}
summary() {
    echo
    if [ "$failed" -gt 0 ]; then
        printf 'failed: %s\n' "${failures[@]}"
    fi
    echo "$passed passed, $failed failed"
}

# ---- 1. install --------------------------------------------------------------------
echo "==> installing into $prefix" >&2
if ! step "install.sh $prefix" bash "$here/install.sh" "$prefix"; then
    summary
    exit 1
fi
native_libs="$(sed -n 's/^native_static_libs=//p' "$prefix/lib/pkgconfig/mcrs.pc")"

# the names install.sh must use: libmcrs.so.X.Y.Z, its SONAME libmcrs.so.ABI (ABI: the
# major version, 0.MINOR before 1.0) and the libmcrs.so development link
version="$(awk -F'"' '/^\[/{pkg = ($0 == "[package]")} pkg && /^version *=/{print $2; exit}' \
    "$root/Cargo.toml")"
IFS=. read -r v_major v_minor v_patch <<<"${version%%[-+]*}"
if [ "$v_major" = 0 ]; then abi="0.$v_minor"; else abi="$v_major"; fi
soname="libmcrs.so.$abi"
real="libmcrs.so.$v_major.$v_minor.$v_patch"

check_layout() {
    local p="$1" f got
    for f in include/mcrs.h "lib/$real" lib/libmcrs.a lib/pkgconfig/mcrs.pc \
        lib/cmake/mcrs/mcrsConfig.cmake lib/cmake/mcrs/mcrsConfigVersion.cmake; do
        [ -f "$p/$f" ] && [ ! -L "$p/$f" ] || { echo "missing (or not a file): $p/$f"; return 1; }
    done
    # the symlinks: relative, so that DESTDIR staging and moving the tree keep them
    [ "$(readlink "$p/lib/$soname")" = "$real" ] ||
        { echo "$p/lib/$soname should be a symlink to $real"; ls -l "$p/lib"; return 1; }
    [ "$(readlink "$p/lib/libmcrs.so")" = "$soname" ] ||
        { echo "$p/lib/libmcrs.so should be a symlink to $soname"; ls -l "$p/lib"; return 1; }
    got="$(readelf -d "$p/lib/$real" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')"
    echo "readelf -d $real: SONAME [$got]"
    [ "$got" = "$soname" ] || { echo "expected the SONAME $soname"; return 1; }
    # stripped: no debug info, no static symbol table (the dynamic one stays)
    if readelf -S "$p/lib/$real" | grep -E -q '\.debug_info|\.symtab'; then
        echo "$real is not stripped"
        return 1
    fi
    echo "$real: $(stat -c %s "$p/lib/$real") bytes, stripped"
    cmp "$root/include/mcrs.h" "$p/include/mcrs.h" || return 1
    grep -qx "#define MCRS_VERSION_STRING \"$version\"" "$p/include/mcrs.h" ||
        { echo "mcrs.h lacks MCRS_VERSION_STRING \"$version\""; return 1; }
    grep -qx "#define MCRS_VERSION_MAJOR $v_major" "$p/include/mcrs.h" || return 1
    grep -qx "#define MCRS_VERSION_MINOR $v_minor" "$p/include/mcrs.h" || return 1
    grep -qx "#define MCRS_VERSION_PATCH $v_patch" "$p/include/mcrs.h" || return 1
    if grep -n '@[A-Z_]*@' "$p/lib/pkgconfig/mcrs.pc" "$p/lib/cmake/mcrs/"*.cmake; then
        echo "unreplaced placeholders"
        return 1
    fi
}
step "layout of the installed tree" check_layout "$prefix" && sed "s/^/      | /" "$log"

check_pkgconfig() {
    local want got
    want="$(awk -F'"' '/^\[/{pkg = ($0 == "[package]")} pkg && /^version *=/{print $2; exit}' \
        "$root/Cargo.toml")"
    got="$(pkg-config --modversion mcrs)" || return 1
    echo "pkg-config --modversion mcrs: $got (Cargo.toml: $want)"
    [ "$got" = "$want" ] || return 1
    echo "pkg-config --cflags --libs mcrs: $(pkg-config --cflags --libs mcrs)"
    echo "pkg-config --static --libs mcrs: $(pkg-config --static --libs mcrs)"
    [ "$(pkg-config --variable=libdir mcrs)" = "$prefix/lib" ] || return 1
    # (pkg-config may end its output with a space)
    [ "$(pkg-config --cflags mcrs | sed 's/ *$//')" = "-I$prefix/include" ] || return 1
    pkg-config --static --libs mcrs | grep -q -- "-lpthread" || return 1
    [ -n "$native_libs" ] || return 1
    if pkg-config --help 2>&1 | grep -q -- --validate; then
        pkg-config --validate mcrs || return 1
    fi
}
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
step "pkg-config mcrs" check_pkgconfig

# A staged install (packaging): files land under DESTDIR, the generated files name the
# final prefix, and the CMake package still works from the staging tree (relocatable).
check_destdir() {
    local stage="$work/stage" had_opt=0
    [ -e /opt/mcrs ] && had_opt=1
    # an earlier install.sh wrote an unversioned libmcrs.so file: it becomes the link
    mkdir -p "$stage/opt/mcrs/lib"
    echo "old unversioned library" >"$stage/opt/mcrs/lib/libmcrs.so"
    DESTDIR="$stage" MCRS_SKIP_BUILD=1 MCRS_NATIVE_STATIC_LIBS="$native_libs" \
        bash "$here/install.sh" /opt/mcrs || return 1
    check_layout "$stage/opt/mcrs" || return 1
    if [ "$had_opt" = 0 ] && [ -e /opt/mcrs ]; then
        echo "install.sh wrote to /opt/mcrs despite DESTDIR"
        return 1
    fi
    grep -qx 'prefix=/opt/mcrs' "$stage/opt/mcrs/lib/pkgconfig/mcrs.pc" || return 1
    grep -qx "soname=$soname" "$stage/opt/mcrs/lib/pkgconfig/mcrs.pc" || return 1
    cmake -S "$here/consumer" -B "$work/cmake-stage" -DCMAKE_PREFIX_PATH="$stage/opt/mcrs" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
        >"$work/cmake-stage.log" 2>&1 || { cat "$work/cmake-stage.log"; return 1; }
    grep "mcrs .* from $stage/opt/mcrs/lib/cmake/mcrs" "$work/cmake-stage.log" || return 1
}
step "DESTDIR=<stage> install.sh /opt/mcrs" check_destdir

# ---- 2. build ----------------------------------------------------------------------
mkdir -p "$work/pc"
pc_cflags="$(pkg-config --cflags mcrs)"
pc_libs="$(pkg-config --libs mcrs)"
pc_libdir="$(pkg-config --variable=libdir mcrs)"
pc_native="$(pkg-config --variable=native_static_libs mcrs)"
binaries=()
for ex in "${examples[@]}"; do
    src="$root/examples/$ex.c"
    # shellcheck disable=SC2086  # pkg-config output is a list of flags
    if step "pkg-config build $ex (libmcrs.so)" \
        "$cc" "${cflags[@]}" $pc_cflags "$src" $pc_libs -Wl,-rpath,"$pc_libdir" \
        -o "$work/pc/${ex}_shared"; then
        binaries+=("pkgconfig:$ex:shared:$work/pc/${ex}_shared")
    fi
    # shellcheck disable=SC2086
    if step "pkg-config build $ex (libmcrs.a)" \
        "$cc" "${cflags[@]}" $pc_cflags "$src" "$pc_libdir/libmcrs.a" $pc_native \
        -o "$work/pc/${ex}_static"; then
        binaries+=("pkgconfig:$ex:static:$work/pc/${ex}_static")
    fi
done

# C++ sees the same header (extern "C"): a tiny C++17 program, linked via pkg-config.
cxx="${CXX:-c++}"
cxx_build() {
    cat >"$work/pc/version.cpp" <<'CPP'
#include <mcrs.h>

#include <cstdio>
#include <memory>

int main() {
    std::unique_ptr<mcrs_config, decltype(&mcrs_config_free)> cfg(mcrs_config_new(), mcrs_config_free);
    if (!cfg || mcrs_config_add_server(cfg.get(), "127.0.0.1:11211") != MCRS_STATUS_OK) return 1;
    mcrs_client *client = nullptr;
    if (mcrs_client_new(cfg.get(), &client) != MCRS_STATUS_OK) return 1;
    mcrs_client_free(client);
    std::printf("mcrs %s from C++\n", mcrs_version());
    return 0;
}
CPP
    # shellcheck disable=SC2086
    "$cxx" -std=c++17 -Wall -Wextra -Werror $pc_cflags "$work/pc/version.cpp" $pc_libs \
        -Wl,-rpath,"$pc_libdir" -o "$work/pc/version_cxx" && env -u LD_LIBRARY_PATH "$work/pc/version_cxx"
}
if command -v "$cxx" >/dev/null 2>&1; then
    step "C++ build and run (pkg-config, $cxx)" cxx_build
else
    echo "SKIP  C++ build ($cxx not found)"
fi

# The version macros: #if on them, and compare them with the loaded library's mcrs_version().
version_check() {
    cat >"$work/pc/version.c" <<'C'
#include <mcrs.h>

#include <stdio.h>
#include <string.h>

#if !defined(MCRS_VERSION_MAJOR) || !defined(MCRS_VERSION_MINOR) || !defined(MCRS_VERSION_PATCH)
#error "mcrs.h lacks the version macros"
#endif
#if !MCRS_VERSION_AT_LEAST(0, 1, 0) || MCRS_VERSION_AT_LEAST(MCRS_VERSION_MAJOR, MCRS_VERSION_MINOR, MCRS_VERSION_PATCH + 1)
#error "MCRS_VERSION_AT_LEAST is wrong"
#endif
#if MCRS_VERSION_NUMBER != MCRS_VERSION_MAJOR * 10000 + MCRS_VERSION_MINOR * 100 + MCRS_VERSION_PATCH
#error "MCRS_VERSION_NUMBER is wrong"
#endif

int main(void) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", MCRS_VERSION_MAJOR, MCRS_VERSION_MINOR, MCRS_VERSION_PATCH);
    printf("header %s (%s, number %d, ABI %s), library %s\n", MCRS_VERSION_STRING, want,
           MCRS_VERSION_NUMBER, MCRS_ABI_VERSION, mcrs_version());
    if (strncmp(MCRS_VERSION_STRING, want, strlen(want)) != 0) return 1;
    return strcmp(mcrs_version(), MCRS_VERSION_STRING) == 0 ? 0 : 2;
}
C
    # shellcheck disable=SC2086
    "$cc" "${cflags[@]}" $pc_cflags "$work/pc/version.c" $pc_libs -Wl,-rpath,"$pc_libdir" \
        -o "$work/pc/version_c" || return 1
    check_linkage "$work/pc/version_c" shared || return 1
    env -u LD_LIBRARY_PATH "$work/pc/version_c" | tee "$work/version.out" || return 1
    grep -q "^header $version (.*), library $version\$" "$work/version.out"
}
cmake_build() {
    cmake -S "$here/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF &&
        cmake --build "$work/cmake" --verbose
}
if step "cmake find_package(mcrs) + build (mcrs::mcrs, mcrs::mcrs_static)" cmake_build; then
    for ex in "${examples[@]}"; do
        binaries+=("cmake:$ex:shared:$work/cmake/${ex}_shared")
        binaries+=("cmake:$ex:static:$work/cmake/${ex}_static")
    done
fi

# ---- 3. run ------------------------------------------------------------------------
# The binary uses the installed library: libmcrs.so from the prefix (by its RPATH, not
# an absolute path baked in, nor LD_LIBRARY_PATH), or no libmcrs.so at all when static.
check_linkage() {
    local exe="$1" kind="$2" needed resolved
    needed="$(readelf -d "$exe" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p')"
    echo "NEEDED: $(echo $needed)"
    if [ "$kind" = static ]; then
        if grep -q mcrs <<<"$needed"; then
            echo "static build depends on a shared libmcrs"
            return 1
        fi
        return 0
    fi
    # the SONAME, not the development link libmcrs.so nor a path
    grep -qxF "$soname" <<<"$needed" || { echo "no NEEDED $soname"; return 1; }
    if grep -v -xF "$soname" <<<"$needed" | grep -q mcrs; then
        echo "a second libmcrs dependency"
        return 1
    fi
    resolved="$(env -u LD_LIBRARY_PATH ldd "$exe" | sed -n "s/^[[:space:]]*${soname//./\\.} => \([^ ]*\).*/\1/p")"
    echo "$soname => $resolved"
    [ "$resolved" = "$prefix/lib/$soname" ] || { echo "expected $prefix/lib/$soname"; return 1; }
}

run_example() {
    local ex="$1" exe="$2"
    check_linkage "$exe" "$3" || return 1
    if [ "$ex" = cluster ]; then
        env -u LD_LIBRARY_PATH bash "$with_memcached" --servers 2 \
            bash -c 'echo "MCRS_SERVERS=$MCRS_TEST_SERVERS"; MCRS_SERVERS="$MCRS_TEST_SERVERS" exec "$0"' "$exe"
    else
        env -u LD_LIBRARY_PATH bash "$with_memcached" \
            bash -c 'echo "MCRS_SERVERS=$MCRS_TEST_SERVER"; MCRS_SERVERS="$MCRS_TEST_SERVER" exec "$0"' "$exe"
    fi
}

step "version macros and mcrs_version() (pkg-config build)" version_check &&
    sed 's/^/      | /' "$log"

shown=" "
for entry in "${binaries[@]}"; do
    IFS=: read -r how ex kind exe <<<"$entry"
    if step "run $ex ($how, $kind)" run_example "$ex" "$exe" "$kind"; then
        if [ "${VERBOSE:-0}" = 1 ] || [ "${shown/ $ex /}" = "$shown" ]; then
            sed 's/^/      | /' "$log"
            shown="$shown$ex "
        fi
    fi
done

# ---- 4. without the build tree ---------------------------------------------------------
# The installed copy is self-contained: run shared builds with the checkout's target/
# hidden (an empty tmpfs over it, in a private mount namespace: nothing else sees it).
without_build_tree() {
    local exe="$1"
    [ -d "$root/target" ] || { echo "no $root/target"; return 1; }
    env -u LD_LIBRARY_PATH unshare --mount bash -c '
        mount -t tmpfs none "$1" || exit 97
        if ls "$1"/release/libmcrs.so* >/dev/null 2>&1; then echo "target/ still visible"; exit 98; fi
        echo "target/ hidden: $(ls -A "$1" | wc -l) entries"
        exec bash "$2" bash -c "MCRS_SERVERS=\$MCRS_TEST_SERVER exec \"\$0\"" "$3"' \
        bash "$root/target" "$with_memcached" "$exe"
}
if unshare --mount true 2>/dev/null && [ -x "$work/cmake/basic_shared" ]; then
    step "run basic (pkg-config, shared) with target/ hidden" \
        without_build_tree "$work/pc/basic_shared" && sed 's/^/      | /' "$log"
    step "run basic (cmake, shared) with target/ hidden" \
        without_build_tree "$work/cmake/basic_shared"
else
    echo "SKIP  runs with target/ hidden (needs unshare --mount, i.e. root or user namespaces)"
fi

summary
[ "$failed" -eq 0 ]
