#!/usr/bin/env bash
# Installs what the examples and tests need and the machine lacks: memcached,
# cmake, a C compiler, valgrind, abigail-tools, pkg-config (Debian packages) and the Python packages used
# by the interoperability tests. Idempotent: does nothing when all is present.
set -euo pipefail

need_apt=()
command -v memcached >/dev/null || need_apt+=(memcached)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v valgrind >/dev/null || need_apt+=(valgrind)
# abidw/abidiff for bindings/c/abi_check.sh; pkg-config for bindings/c/test_install.sh
command -v abidiff >/dev/null || need_apt+=(abigail-tools)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
# the TLS ctest (with_memcached.sh --tls) and the Node TLS tests make their certificates with openssl
command -v openssl >/dev/null || need_apt+=(openssl)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
# the Python package's C extension (bindings/python) needs Python.h
python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null \
  || need_apt+=(python3-dev)
# pylibmc builds against libmemcached's headers (ketama interop fixtures)
[ -e /usr/include/libmemcached/memcached.h ] || need_apt+=(libmemcached-dev)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: ${need_apt[*]} — install them (e.g. sudo apt-get install -y ${need_apt[*]})" >&2
    exit 1
  fi
  echo "installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# the Node addon compiles against the Node headers already here (bindings/node/.npmrc: nodedir=/usr)
if command -v node >/dev/null && [ ! -e /usr/include/node/node_api.h ]; then
  echo "warning: /usr/include/node/node_api.h is missing: the Node addon cannot build (set npm_config_nodedir to the Node prefix that has include/node)" >&2
fi

if ! python3 -c 'import pymemcache, pytest' 2>/dev/null; then
  echo "installing pymemcache and pytest" >&2
  python3 -m pip install -q pymemcache pytest 2>&1 | grep -v "Running pip as the 'root' user" || true
fi
