#!/usr/bin/env python3
"""CPU per operation (time.process_time: user + system of this process) of
mcrs against pymemcache and pylibmc, over one memcached started here with
-t 1 on a free loopback port (or --server host:port).

    python3 bindings/python/bench.py [--n 10000] [--rounds 7] [--server 127.0.0.1:11211 | --unix]

Workloads: get (a hit, 100-byte value), set (100 bytes, each client's default
noreply: pymemcache and mcrs send set with noreply, pylibmc waits), and
get_many of 100 keys (all hits). The clients run in interleaved rounds; each
keeps its least-CPU round. Prints µs of CPU per operation, the ratio to
pymemcache, and the floor: one send + one recv per get from Python, the
system calls any blocking client pays for a round trip.
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


def start_memcached_unix():
    exe = shutil.which("memcached") or sys.exit("memcached not found")
    path = f"/tmp/mcrs-bench-{os.getpid()}.sock"
    cmd = [exe, "-s", path, "-t", "1"] + (["-u", "root"] if os.geteuid() == 0 else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
            return proc, path
        except OSError:
            time.sleep(0.02)
    proc.kill()
    sys.exit("could not start memcached on a unix socket")


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
    """CPU seconds per call of fn: the least of `repeat` runs of n calls."""
    best = None
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        t = (time.process_time() - t0) / n
        best = t if best is None else min(best, t)
    return best


class RawSocket:
    """The floor: one send and one recv per get from Python, no parsing (the
    least any blocking client pays in system calls); set and get_many are not
    measured on it."""

    def __init__(self, spec):
        if isinstance(spec, str):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(spec)
        else:
            self.sock = socket.create_connection(spec)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get(self, key):
        self.sock.sendall(b"get " + key.encode() + b"\r\n")
        return self.sock.recv(65536)


def clients(spec):
    out = []
    import mcrs

    # every client with TCP_NODELAY (mcrs always sets it; pymemcache's default
    # would stall a get after a noreply set by ~40 ms)
    out.append(("mcrs", mcrs.Client(spec)))
    try:
        from pymemcache.client.base import Client as PyClient

        out.append(("pymemcache", PyClient(spec, no_delay=not isinstance(spec, str))))
    except ImportError:
        print("pymemcache not installed: no reference", file=sys.stderr)
    try:
        import pylibmc

        out.append(("pylibmc", pylibmc.Client([spec if isinstance(spec, str) else "%s:%d" % spec], binary=False,
                                                 behaviors={} if isinstance(spec, str) else {"tcp_nodelay": True})))
    except ImportError:
        print("pylibmc not installed (pip install pylibmc): not measured", file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000, help="operations per round (get/set; get_many: n/20)")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds; the least CPU counts")
    ap.add_argument("--server", help="host:port of a running memcached (default: start one)")
    ap.add_argument("--unix", action="store_true", help="start memcached on a unix socket instead")
    args = ap.parse_args()
    proc = None
    if args.server:
        host, port = args.server.rsplit(":", 1)
        spec = (host, int(port))
    elif args.unix:
        proc, spec = start_memcached_unix()
    else:
        proc, port = start_memcached()
        spec = (HOST, port)
    where = spec if isinstance(spec, str) else "%s:%d" % spec
    try:
        value = b"v" * 100
        keys = [f"bench:{i}" for i in range(100)]
        cs = clients(spec)
        cs[0][1].set_many({k: value for k in keys}, noreply=False)
        n = args.n
        n_many = max(100, n // 20)
        work = {}
        for name, c in cs:
            assert c.get(keys[0]) == value, name
            assert len(c.get_many(keys) if name != "pylibmc" else c.get_multi(keys)) == 100
            many = c.get_multi if name == "pylibmc" else c.get_many
            work[name] = {
                "get": (lambda c=c: c.get("bench:7"), n),
                "set": (lambda c=c: c.set("bench:set", value), n),
                "get_many(100)": (lambda m=many: m(keys), n_many),
            }
        raw = RawSocket(spec)
        work["floor"] = {"get": (lambda: raw.get("bench:7"), n)}
        for per in work.values():
            for f, _ in per.values():
                cpu_per_op(f, 200, 1)  # warm up
        # rounds interleave the clients, so that load from elsewhere on the
        # machine hits them alike; each keeps its least-CPU round
        results = {name: {} for name in work}
        for _ in range(args.rounds):
            for name, per in work.items():
                for w, (f, count) in per.items():
                    t = cpu_per_op(f, count, 1)
                    if w not in results[name] or t < results[name][w]:
                        results[name][w] = t
                    if w == "set":
                        work[name]["get"][0]()  # the noreply sets are done before the next client
        floor = results.pop("floor")["get"]
        ref = results.get("pymemcache")
        others = [name for name in results if name != "pymemcache"]
        print(f"CPU per op in µs (time.process_time, user + system; least of {args.rounds} "
              f"interleaved rounds), memcached -t 1 on {where}")
        print(f"{'workload':<15}" + "".join(f"{name:>12}" for name in results) +
              ("".join(f"{name + '/pymemcache':>20}" for name in others) if ref else ""))
        for w in ("get", "set", "get_many(100)"):
            line = f"{w:<15}" + "".join(f"{r[w] * 1e6:>12.2f}" for r in results.values())
            if ref:
                line += "".join(f"{results[o][w] / ref[w]:>20.3f}" for o in others)
            print(line)
        print(f"{'floor: get':<15}{floor * 1e6:>12.2f}   (one send + one recv from Python, no parsing)"
              + (f"; {floor / ref['get']:.3f}x of pymemcache's get" if ref else ""))
    finally:
        if proc:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
