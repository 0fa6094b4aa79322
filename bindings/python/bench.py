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
import resource
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
    """(CPU, user CPU) seconds per call of fn: the run of n calls with the
    least CPU (time.process_time) out of `repeat`, and its user share."""
    best = None
    for _ in range(repeat):
        u0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        t0 = time.process_time()
        for _ in range(n):
            fn()
        t = (time.process_time() - t0) / n
        u = (resource.getrusage(resource.RUSAGE_SELF).ru_utime - u0) / n
        if best is None or t < best[0]:
            best = (t, u)
    return best


class RawSocket:
    """The floor: one send and one recv per get from Python, no parsing (the
    least any blocking client pays in system calls); set and get_many are not
    measured on it."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get(self, key):
        self.sock.sendall(b"get " + key.encode() + b"\r\n")
        return self.sock.recv(65536)


def clients(host, port):
    out = []
    import mcrs

    # every client with TCP_NODELAY (mcrs always sets it; pymemcache's default
    # would stall a get after a noreply set by ~40 ms)
    out.append(("mcrs", mcrs.Client((host, port))))
    try:
        from pymemcache.client.base import Client as PyClient

        out.append(("pymemcache", PyClient((host, port), no_delay=True)))
    except ImportError:
        print("pymemcache not installed: no reference", file=sys.stderr)
    try:
        import pylibmc

        out.append(("pylibmc", pylibmc.Client([f"{host}:{port}"], binary=False, behaviors={"tcp_nodelay": True})))
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
        raw = RawSocket(host, port)
        floor = cpu_per_op(lambda: raw.get("bench:7"), n)
        ref = results.get("pymemcache")
        others = [name for name in results if name != "pymemcache"]
        print(f"CPU per op in µs (time.process_time = user+system; best of 3 runs), "
              f"memcached -t 1 on {host}:{port}; [user CPU only]")
        print(f"{'workload':<15}" + "".join(f"{name:>20}" for name in results) +
              ("".join(f"{name + '/pymemcache':>24}" for name in others) if ref else ""))
        for w in ("get", "set", "get_many(100)"):
            line = f"{w:<15}" + "".join(
                f"{r[w][0] * 1e6:>10.2f} [{r[w][1] * 1e6:>6.2f}]" for r in results.values())
            if ref:
                line += "".join(
                    f"{results[o][w][0] / ref[w][0]:>14.3f} [{results[o][w][1] / max(ref[w][1], 1e-9):>6.3f}]"
                    for o in others
                )
            print(line)
        print(f"{'floor: get':<15}{floor[0] * 1e6:>10.2f} [{floor[1] * 1e6:>6.2f}]   "
              "(one send + one recv from Python, no parsing)")
        if ref:
            print(f"the floor is {floor[0] / ref['get'][0]:.3f}x of pymemcache's get CPU")
    finally:
        if proc:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
