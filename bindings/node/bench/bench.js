'use strict';
// mcrs against memjs and memcache-client (devDependencies), side by side in one
// run on one `memcached -t 1` that the bench starts on a free loopback port.
//
//   node bench/bench.js [seconds per measurement, default 1.5] [rounds, default 3]
//   node bench/bench.js lag     # the event-loop lag part only (e.g. under
//                               # `chrt -f 10` to keep other processes' load out of it)
//
// Workloads, each on 100 keys with 100-byte values (all hits, values checked):
//   serial     awaited gets one at a time
//   inflight   100 gets in flight (100 async loops, each awaiting its get)
//   getMany    getMany of 100 keys, awaited one call at a time (memjs has no
//              multi-get: Promise.all of 100 gets); ops = keys read
// For each: ops/s (wall clock) and the client process's CPU per op (user +
// system from process.cpuUsage). The clients take turns in every round; the
// best round of each counts. Then the event-loop lag while the server is
// stopped (SIGSTOP) with 100 gets in flight: the worst delay of a 1 ms
// interval timer until the requests time out (300 ms), over 5 stalls per
// client, beside the same timer's delay with nothing to do (the machine's
// own noise).

const { Client } = require('..');
const { startMemcached, sleep } = require('../test/support');

const LAG_ONLY = process.argv[2] === 'lag';
const SECONDS = LAG_ONLY ? 0 : Number(process.argv[2] || 1.5);
const ROUNDS = LAG_ONLY ? 0 : Number(process.argv[3] || 3);
const N_KEYS = 100;
const VALUE = 'v'.repeat(100);
const KEYS = Array.from({ length: N_KEYS }, (_, i) => `bench:key:${i}`);

function optional(name) {
  try {
    return require(name);
  } catch {
    return null;
  }
}

function makeClients(address, timeout) {
  const list = [];
  list.push({
    name: 'mcrs',
    client: new Client(address, { timeout }),
    get: (c, k) => c.get(k),
    getMany: (c, keys) => c.getMany(keys),
    value: (v) => v,
    many: (r, keys) => keys.every((k) => r[k] === VALUE),
    close: (c) => c.close(),
  });
  const memjs = optional('memjs');
  if (memjs) {
    list.push({
      name: 'memjs',
      client: memjs.Client.create(address, { timeout: timeout / 1000, retries: 0, logger: { log() {} } }),
      get: (c, k) => c.get(k),
      getMany: (c, keys) => Promise.all(keys.map((k) => c.get(k))),
      value: (r) => r.value && r.value.toString(),
      many: (rs) => rs.every((r) => r.value && r.value.toString() === VALUE),
      close: (c) => c.close(),
    });
  }
  const MC = optional('memcache-client');
  if (MC) {
    list.push({
      name: 'memcache-client',
      client: new MC.MemcacheClient({ server: address, cmdTimeout: timeout, ignoreNotStored: true }),
      get: (c, k) => c.get(k),
      getMany: (c, keys) => c.get(keys),
      value: (r) => r && r.value,
      many: (r, keys) => keys.every((k) => r[k] && r[k].value === VALUE),
      close: (c) => c.shutdown(),
    });
  }
  return list;
}

async function measure(fn) {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + SECONDS * 1000;
  let ops = 0;
  while (Date.now() < deadline) ops += await fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { opsPerSec: ops / wall, cpuUsPerOp: (cpu.user + cpu.system) / ops };
}

const WORKLOADS = {
  async serial(x) {
    const c = x.client;
    for (let i = 0; i < 200; i++) {
      if (x.value(await x.get(c, KEYS[i % N_KEYS])) !== VALUE) throw new Error(`${x.name}: wrong value`);
    }
    return 200;
  },
  async inflight(x) {
    const c = x.client;
    const per = 20;
    const loop = async (j) => {
      for (let i = 0; i < per; i++) {
        if (x.value(await x.get(c, KEYS[(i + j) % N_KEYS])) !== VALUE) throw new Error(`${x.name}: wrong value`);
      }
    };
    const all = [];
    for (let j = 0; j < 100; j++) all.push(loop(j));
    await Promise.all(all);
    return 100 * per;
  },
  async getMany(x) {
    const c = x.client;
    for (let i = 0; i < 10; i++) {
      if (!x.many(await x.getMany(c, KEYS), KEYS)) throw new Error(`${x.name}: wrong values`);
    }
    return 10 * N_KEYS;
  },
};

/**
 * The worst delay of a 1 ms interval past its 1 ms while `during` runs (wall
 * clock: it also counts the OS running other processes, hence the baseline).
 */
async function lagDuring(during) {
  let worst = 0;
  let last = performance.now();
  const t = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 1);
    last = now;
  }, 1);
  try {
    await during();
  } finally {
    clearInterval(t);
  }
  return worst;
}

async function main() {
  const mc = await startMemcached();
  const clients = makeClients(mc.address, 1000);
  const seed = new Client(mc.address, { defaultNoreply: false });
  for (const k of KEYS) await seed.set(k, VALUE);
  seed.close();

  const best = {};
  for (const x of clients) await WORKLOADS.serial(x); // warm up, connect
  for (let round = 0; round < ROUNDS; round++) {
    for (const w of Object.keys(WORKLOADS)) {
      for (const x of clients) {
        const r = await measure(() => WORKLOADS[w](x));
        const key = `${w}/${x.name}`;
        if (!best[key] || r.opsPerSec > best[key].opsPerSec) best[key] = r;
      }
    }
  }
  for (const x of clients) await x.close(x.client);

  if (!LAG_ONLY) console.log(`node ${process.version}, memcached -t 1 on ${mc.address}, ${ROUNDS} rounds of ${SECONDS} s, best round`);
  if (!LAG_ONLY) console.log('workload  client            ops/s     CPU us/op   mcrs ratio');
  for (const w of LAG_ONLY ? [] : Object.keys(WORKLOADS)) {
    const base = best[`${w}/mcrs`];
    for (const x of clients) {
      const r = best[`${w}/${x.name}`];
      const ratio = x.name === 'mcrs' ? '' : `${(base.opsPerSec / r.opsPerSec).toFixed(2)}x ops/s, ${(r.cpuUsPerOp / base.cpuUsPerOp).toFixed(2)}x less CPU`;
      console.log(`${w.padEnd(9)} ${x.name.padEnd(16)} ${r.opsPerSec.toFixed(0).padStart(8)}  ${r.cpuUsPerOp.toFixed(2).padStart(9)}   ${ratio}`);
    }
  }

  // event-loop lag while the server is stopped: 100 gets in flight, timeout 300 ms,
  // LAG_TRIALS (9) stalls per client; the baseline is the same timer with nothing to do
  const TRIALS = Number(process.env.LAG_TRIALS || 9);
  const median = (xs) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
  const base = [];
  for (let i = 0; i < TRIALS; i++) base.push(await lagDuring(() => sleep(300)));
  const show = (ls) => `median ${median(ls).toFixed(2)} ms, worst ${Math.max(...ls).toFixed(2)} ms`;
  console.log(`\nevent-loop lag (worst delay of a 1 ms interval) while the server is stopped, 100 gets in flight, timeout 300 ms, ${TRIALS} stalls each:`);
  console.log(`  ${'idle baseline'.padEnd(16)} ${show(base)}`);
  for (const x of makeClients(mc.address, 300)) {
    await WORKLOADS.serial(x); // connected
    const lags = [];
    let failures = 0;
    let wrong = 0; // answered with a wrong value (must stay 0)
    let took = 0;
    for (let i = 0; i < TRIALS; i++) {
      mc.pause();
      await sleep(20); // the server has stopped
      const t0 = performance.now();
      lags.push(await lagDuring(async () => {
        const ps = KEYS.map((k) => Promise.resolve(x.get(x.client, k)).then((v) => {
          if (x.value(v) !== VALUE) wrong++;
        }, () => { failures++; }));
        await Promise.all(ps);
      }));
      took = Math.max(took, performance.now() - t0);
      mc.resume();
      await sleep(50);
      await WORKLOADS.serial(x).catch(() => {}); // reconnect
    }
    console.log(`  ${x.name.padEnd(16)} ${show(lags)}; ${failures}/${100 * TRIALS} rejected, ${wrong} wrong values, the slowest stall after ${took.toFixed(0)} ms`);
    try { await x.close(x.client); } catch { /* closing a timed-out client */ }
  }
  await mc.stop();
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
