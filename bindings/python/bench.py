#!/usr/bin/env python3
"""CPU per operation (time.process_time: user + system of this process) of
mcrs against pymemcache and pylibmc, over one memcached started here with
-t 1 on a free loopback port (or --server host:port).

    python3 bindings/python/bench.py [--n 20000] [--server 127.0.0.1:11211]

Workloads: get (a hit, 100-byte value), set (100 bytes, each client's default
noreply: pymemcache and mcrs send set with noreply, pylibmc waits), and
get_many of 100 keys (all hits). Prints µs of CPU per operation and the ratio
to pymemcache.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time

# the installed package, not the source tree beside this script
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_memcached():
    exe = shutil.which("memcached") or sys.exit("memcached not found")
    for _ in range(10):
        port = free_port()
        cmd = [exe, "-l", HOST, "-p", str(port), "-U", "0", "-t", "1"]
        if os.geteuid() == 0:
            cmd += ["-u", "root"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                time.sleep(0.05)
                if proc.poll() is None:
                    return proc, port
            except OSError:
                time.sleep(0.02)
        proc.kill()
        proc.wait()
    sys.exit("could not start memcached")


def cpu_per_op(fn, n, repeat=3):
    """Least CPU seconds per call of fn over `repeat` runs of n calls."""
    best = None
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        t = (time.process_time() - t0) / n
        best = t if best is None else min(best, t)
    return best


def clients(host, port):
    out = []
    import mcrs

    out.append(("mcrs", mcrs.Client((host, port))))
    try:
        from pymemcache.client.base import Client as PyClient

        out.append(("pymemcache", PyClient((host, port))))
    except ImportError:
        print("pymemcache not installed: no reference", file=sys.stderr)
    try:
        import pylibmc

        out.append(("pylibmc", pylibmc.Client([f"{host}:{port}"], binary=False)))
    except ImportError:
        print("pylibmc not installed (pip install pylibmc): not measured", file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000, help="operations per run (get/set)")
    ap.add_argument("--server", help="host:port of a running memcached (default: start one)")
    args = ap.parse_args()
    proc = None
    if args.server:
        host, port = args.server.rsplit(":", 1)
        port = int(port)
    else:
        proc, port = start_memcached()
        host = HOST
    try:
        value = b"v" * 100
        keys = [f"bench:{i}" for i in range(100)]
        cs = clients(host, port)
        cs[0][1].set_many({k: value for k in keys}, noreply=False)
        n = args.n
        n_many = max(100, n // 20)
        results = {}
        for name, c in cs:
            assert c.get(keys[0]) == value, name
            assert len(c.get_many(keys) if name != "pylibmc" else c.get_multi(keys)) == 100
            get = lambda c=c: c.get("bench:7")  # noqa: E731
            setf = lambda c=c: c.set("bench:set", value)  # noqa: E731
            if name == "pylibmc":
                many = lambda c=c: c.get_multi(keys)  # noqa: E731
            else:
                many = lambda c=c: c.get_many(keys)  # noqa: E731
            for f in (get, setf, many):
                cpu_per_op(f, 200, 1)  # warm up
            results[name] = {
                "get": cpu_per_op(get, n),
                "set": cpu_per_op(setf, n),
                "get_many(100)": cpu_per_op(many, n_many),
            }
            # the noreply sets must have reached the server before the next client runs
            c.get("bench:set")
        ref = results.get("pymemcache")
        print(f"CPU per op (µs, time.process_time, best of 3), memcached -t 1 on {host}:{port}")
        print(f"{'workload':<15}" + "".join(f"{name:>14}" for name in results) +
              ("".join(f"{name + '/pymc':>16}" for name in results if name != "pymemcache") if ref else ""))
        for w in ("get", "set", "get_many(100)"):
            line = f"{w:<15}" + "".join(f"{r[w] * 1e6:>14.2f}" for r in results.values())
            if ref:
                line += "".join(
                    f"{r[w] / ref[w]:>16.3f}" for name, r in results.items() if name != "pymemcache"
                )
            print(line)
    finally:
        if proc:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
