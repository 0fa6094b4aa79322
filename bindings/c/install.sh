#!/usr/bin/env bash
# Build mcrs and install it for C/C++ projects.
#
#   bindings/c/install.sh [PREFIX]          # PREFIX defaults to /usr/local
#   DESTDIR=/tmp/stage bindings/c/install.sh /usr   # staged install (packaging)
#
# Installs
#   PREFIX/include/mcrs.h
#   PREFIX/lib/libmcrs.so.X.Y.Z                      (SONAME libmcrs.so.ABI, stripped)
#   PREFIX/lib/libmcrs.so.ABI -> libmcrs.so.X.Y.Z    (what programs load)
#   PREFIX/lib/libmcrs.so -> libmcrs.so.ABI          (what -lmcrs links)
#   PREFIX/lib/libmcrs.a
#   PREFIX/lib/pkgconfig/mcrs.pc                     (pkg-config mcrs)
#   PREFIX/lib/cmake/mcrs/mcrsConfig.cmake           (find_package(mcrs CONFIG))
#   PREFIX/lib/cmake/mcrs/mcrsConfigVersion.cmake
# each under $DESTDIR when it is set. ABI is the ABI version: the major version, or
# 0.MINOR while the major version is 0 (build.rs sets the SONAME; README "Packaging").
#
# Environment:
#   DESTDIR                  staging root, prepended to every installed path
#   LIBDIR                   library directory relative to PREFIX (default lib;
#                            e.g. lib64 or lib/x86_64-linux-gnu)
#   CARGO                    cargo binary (default cargo)
#   MCRS_SKIP_BUILD=1        install the existing target/release build as is
#   MCRS_STRIP=0             keep the debug info (default 1: strip the installed
#                            libraries; a packager's own debug splitting wants 0)
#   MCRS_NATIVE_STATIC_LIBS  the system libraries libmcrs.a needs, as linker flags
#                            (default: asked from rustc, see below)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cargo="${CARGO:-cargo}"
destdir="${DESTDIR:-}"
libdir_rel="${LIBDIR:-lib}"

die() {
    echo "install.sh: $*" >&2
    exit 1
}

[ $# -le 1 ] || die "usage: $0 [PREFIX]"
prefix="${1:-${PREFIX:-/usr/local}}"
case "$prefix" in
    /*) ;;
    *) die "PREFIX must be an absolute path (got '$prefix')" ;;
esac
# no trailing slashes (but keep "/")
while [ "${#prefix}" -gt 1 ] && [ "${prefix%/}" != "$prefix" ]; do prefix="${prefix%/}"; done
case "$libdir_rel" in
    /* | '' | *..*) die "LIBDIR must be a relative path below PREFIX (got '$libdir_rel')" ;;
esac
libdir_rel="${libdir_rel%/}"

# The fallback list: what rustc prints for x86_64/aarch64 Linux with glibc.
default_native="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
native="${MCRS_NATIVE_STATIC_LIBS:-}"

if [ "${MCRS_SKIP_BUILD:-0}" != 1 ]; then
    command -v "$cargo" >/dev/null || die "cargo not found (set CARGO, or install Rust: https://rustup.rs)"
    echo "==> building libmcrs (cargo build --release in $root)" >&2
    (cd "$root" && "$cargo" build --release)
    if [ -z "$native" ]; then
        # Rust prints the link line of a staticlib only when it links one, so this
        # relinks the library once (same flags as the build above, plus the --print).
        echo "==> asking rustc which system libraries libmcrs.a needs" >&2
        if out="$(cd "$root" && "$cargo" rustc --release --lib -- --print native-static-libs 2>&1)"; then
            native="$(printf '%s\n' "$out" | sed -n 's/^.*native-static-libs: *//p' | tail -n 1)"
        else
            printf '%s\n' "$out" >&2
            die "cargo rustc --release failed"
        fi
    fi
fi
if [ -z "$native" ]; then
    native="$default_native"
    echo "install.sh: using the default system library list for libmcrs.a: $native" >&2
fi
native="$(printf '%s' "$native" | tr -s ' \t\r\n' ' ' | sed 's/^ //; s/ $//')"

# "-lfoo" -> "foo" for CMake (a plain library name); any other flag stays as is
native_cmake=""
for flag in $native; do
    case "$flag" in
        -l?*) item="${flag#-l}" ;;
        *) item="$flag" ;;
    esac
    native_cmake="${native_cmake:+$native_cmake;}$item"
done

header="$root/include/mcrs.h"
so="$root/target/release/libmcrs.so"
a="$root/target/release/libmcrs.a"
for f in "$header" "$so" "$a"; do
    [ -f "$f" ] || die "$f is missing (run 'cargo build --release' in $root)"
done

version="$(awk -F'"' '/^\[/{pkg = ($0 == "[package]")} pkg && /^version *=/{print $2; exit}' \
    "$root/Cargo.toml")"
[ -n "$version" ] || die "could not read the package version from $root/Cargo.toml"
major="${version%%.*}"
minor="${version#*.}"
minor="${minor%%.*}"
patch="${version#*.*.}"
patch="${patch%%[-+]*}"
# the ABI version, as build.rs computes it for the SONAME
if [ "$major" = 0 ]; then abi="0.$minor"; else abi="$major"; fi
soname="libmcrs.so.$abi"
real="libmcrs.so.$major.$minor.$patch"
if command -v readelf >/dev/null; then
    built_soname="$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')"
    [ "$built_soname" = "$soname" ] ||
        die "$so has the SONAME '${built_soname}', expected $soname (rebuild: cargo build --release)"
fi
sizeof_void_p="$(getconf LONG_BIT 2>/dev/null || echo 64)"
sizeof_void_p=$((sizeof_void_p / 8))

# from PREFIX/LIBDIR/cmake/mcrs back to PREFIX
up="../.."
rest="$libdir_rel"
while :; do
    up="$up/.."
    case "$rest" in
        */*) rest="${rest#*/}" ;;
        *) break ;;
    esac
done

# "$prefix" is "/" for a root install: avoid "//include"
base="${prefix%/}"
inc_dir="$destdir$base/include"
lib_dir="$destdir$base/$libdir_rel"
pc_dir="$lib_dir/pkgconfig"
cmake_dir="$lib_dir/cmake/mcrs"

# Replace @NAME@ placeholders literally (values may hold '/', '&', '\' or ';').
subst() {
    local in="$1" out="$2"
    PREFIX="${base:-/}" LIBDIR="$libdir_rel" VERSION="$version" NATIVE_STATIC_LIBS="$native" \
        NATIVE_STATIC_LIBS_CMAKE="$native_cmake" CONFIG_TO_PREFIX="$up" \
        VERSION_MAJOR="$major" VERSION_MINOR="$minor" SIZEOF_VOID_P="$sizeof_void_p" \
        SIZEOF_VOID_P_BITS="$((sizeof_void_p * 8))" SONAME="$soname" REALNAME="$real" \
        ABI_VERSION="$abi" \
        awk 'BEGIN {
            n = split("PREFIX LIBDIR VERSION NATIVE_STATIC_LIBS NATIVE_STATIC_LIBS_CMAKE " \
                      "CONFIG_TO_PREFIX VERSION_MAJOR VERSION_MINOR SIZEOF_VOID_P " \
                      "SIZEOF_VOID_P_BITS SONAME REALNAME ABI_VERSION", names, " ")
        }
        {
            line = $0
            for (i = 1; i <= n; i++) {
                pat = "@" names[i] "@"; val = ENVIRON[names[i]]; done = ""
                while ((p = index(line, pat)) > 0) {
                    done = done substr(line, 1, p - 1) val
                    line = substr(line, p + length(pat))
                }
                line = done line
            }
            print line
        }' "$in" >"$out.tmp"
    if grep -n '@[A-Z_]*@' "$out.tmp" >&2; then
        rm -f "$out.tmp"
        die "unreplaced placeholder in $in"
    fi
    mv "$out.tmp" "$out"
}

echo "==> installing mcrs $version into ${destdir:+$destdir (DESTDIR) + }${base:-/}" >&2
install -d "$inc_dir" "$lib_dir" "$pc_dir" "$cmake_dir"
install -m 644 "$header" "$inc_dir/mcrs.h"
# install(1) writes a new file: programs running the old library keep their mapping
install -m 755 "$so" "$lib_dir/$real"
install -m 644 "$a" "$lib_dir/libmcrs.a"
if [ "${MCRS_STRIP:-1}" = 1 ]; then
    strip="${STRIP:-strip}"
    command -v "$strip" >/dev/null || die "$strip not found (set MCRS_STRIP=0 to install unstripped)"
    "$strip" --strip-unneeded "$lib_dir/$real"
    "$strip" --strip-debug "$lib_dir/libmcrs.a"
fi
# relative symlinks (they survive DESTDIR and moving the tree); -n replaces an old
# libmcrs.so file or link in place
ln -sfn "$real" "$lib_dir/$soname"
ln -sfn "$soname" "$lib_dir/libmcrs.so"
subst "$here/mcrs.pc.in" "$pc_dir/mcrs.pc"
subst "$here/mcrsConfig.cmake.in" "$cmake_dir/mcrsConfig.cmake"
subst "$here/mcrsConfigVersion.cmake.in" "$cmake_dir/mcrsConfigVersion.cmake"
chmod 644 "$pc_dir/mcrs.pc" "$cmake_dir/mcrsConfig.cmake" "$cmake_dir/mcrsConfigVersion.cmake"

for f in "$inc_dir/mcrs.h" "$lib_dir/$real" "$lib_dir/$soname" "$lib_dir/libmcrs.so" \
    "$lib_dir/libmcrs.a" "$pc_dir/mcrs.pc" \
    "$cmake_dir/mcrsConfig.cmake" "$cmake_dir/mcrsConfigVersion.cmake"; do
    echo "    $f"
done
echo "==> libmcrs.a needs: $native" >&2
if [ -z "$destdir" ]; then
    case "$base/$libdir_rel" in
        /usr/lib | /usr/local/lib | /usr/lib64 | /usr/local/lib64 | /usr/lib/*-linux-gnu)
            echo "==> run ldconfig (as root) so that the loader's cache knows $soname" >&2
            ;;
        *)
            echo "==> $base/$libdir_rel is not on the loader's default path: link with" \
                "-Wl,-rpath,$base/$libdir_rel (or set LD_LIBRARY_PATH)" >&2
            echo "    and let pkg-config / CMake find mcrs with" \
                "PKG_CONFIG_PATH=$base/$libdir_rel/pkgconfig / CMAKE_PREFIX_PATH=${base:-/}" >&2
            ;;
    esac
fi
