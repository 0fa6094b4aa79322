'use strict';
// Test support: real memcached servers on free loopback ports, started by the
// tests themselves and killed afterwards. (Not a test file: the test script
// runs test/*.test.js only.)

const fs = require('node:fs');
const { spawn, spawnSync } = require('node:child_process');
const net = require('node:net');

const running = new Set();
process.on('exit', () => {
  for (const p of running) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function memcachedPath() {
  const r = spawnSync('sh', ['-c', 'command -v memcached'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  if (r.status !== 0 || !p) {
    throw new Error('memcached is not installed (the tests need the real server: apt-get install memcached)');
  }
  return p;
}

/**
 * Starts `memcached -l 127.0.0.1 -p PORT -U 0 -t 1` (plus `-u root` as root)
 * and resolves once it accepts connections. Returns
 * { port, address, proc, stop(), kill(), pause(), resume() }.
 */
function waitStopped(pid) {
  const end = Date.now() + 2000;
  while (Date.now() < end) {
    let stat = '';
    try { stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return; }
    if (stat.slice(stat.lastIndexOf(')') + 1).trim().startsWith('T')) return;
  }
}

async function startMemcached(extraArgs = [], fixedPort = undefined) {
  const bin = memcachedPath();
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = fixedPort ?? await freePort();
    const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-t', '1', ...extraArgs];
    if (typeof process.getuid === 'function' && process.getuid() === 0) args.push('-u', 'root');
    const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d) => { stderr += d; });
    let exited = false;
    const exitP = new Promise((r) => proc.once('exit', () => { exited = true; running.delete(proc); r(); }));
    running.add(proc);
    const deadline = Date.now() + 5000;
    while (!exited && Date.now() < deadline) {
      // something answered, but it may be another test file's server that
      // holds the port while ours exits on a failed bind: ours must still be
      // running a moment later
      if ((await canConnect(port)) && (await sleep(30), !exited)) {
        const stop = async () => {
          if (!exited) { try { proc.kill('SIGCONT'); } catch { /* gone */ } proc.kill('SIGKILL'); }
          await exitP;
        };
        return {
          port,
          address: `127.0.0.1:${port}`,
          proc,
          stop,
          kill: stop,
          // kill() returns before the process has stopped: wait until it has,
          // or a request sent right after could still be answered
          pause: () => { proc.kill('SIGSTOP'); waitStopped(proc.pid); },
          resume: () => proc.kill('SIGCONT'),
          // kills it and starts it again with the same arguments on the same port
          restart: async () => { await stop(); return startMemcached(extraArgs, port); },
        };
      }
      await sleep(20);
    }
    if (!exited) proc.kill('SIGKILL');
    await exitP;
    if (attempt === 4) throw new Error(`memcached did not start on port ${port}: ${stderr}`);
  }
  throw new Error('unreachable');
}

/** A key unique to this process and call, so tests do not see each other's data. */
let counter = 0;
function uniqueKey(prefix = 'k') {
  counter += 1;
  return `${prefix}_${process.pid}_${counter}`;
}

/** Whether python3 with pymemcache is available: null when yes, else the reason. */
function pymemcacheMissing() {
  const r = spawnSync('python3', ['-c', 'import pymemcache, pymemcache.serde; print(pymemcache.__version__)'], { encoding: 'utf8' });
  if (r.error) return `python3 is not available (${r.error.code || r.error.message})`;
  if (r.status !== 0) return 'pymemcache is not installed for python3 (pip install pymemcache)';
  return null;
}

/** Runs a python3 script with JSON on stdin; returns its JSON stdout. */
function python(script, input) {
  const r = spawnSync('python3', ['-c', script], { input: JSON.stringify(input), encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`python3 failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/**
 * Certificates made with openssl in a fresh temporary directory: a private CA
 * (ca.pem), server, expired and client certificates it signed (for 127.0.0.1
 * and localhost; NAME.pem, NAME.key) and rogue, signed by another CA.
 * Returns { dir, path(name), read(name), serverArgs(which, ...more), remove() }.
 */
function makePki() {
  const os = require('node:os');
  const path = require('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcrs-node-tls-'));
  const at = (name) => path.join(dir, name);
  const openssl = (...args) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.error) throw new Error(`openssl is needed for the TLS tests: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const [ca, cn] of [['ca', 'mcrs test CA'], ['rogue-ca', 'untrusted CA']]) {
    openssl('req', '-x509', ...ec, '-days', '2', '-subj', `/CN=${cn}`, '-keyout', `${ca}.key`, '-out', `${ca}.pem`);
  }
  fs.writeFileSync(at('leaf.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  // `openssl ca` can back-date a certificate (for the expired one)
  fs.writeFileSync(at('ca.cnf'), '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\n' +
    'serial = serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n');
  fs.writeFileSync(at('index.txt'), '');
  fs.writeFileSync(at('serial'), '01\n');
  for (const [who, ca, dates] of [
    ['server', 'ca', ['-startdate', '20200101000000Z', '-enddate', '20991231000000Z']],
    ['expired', 'ca', ['-startdate', '20200101000000Z', '-enddate', '20210101000000Z']],
    ['client', 'ca', ['-startdate', '20200101000000Z', '-enddate', '20991231000000Z']],
    ['rogue', 'rogue-ca', ['-startdate', '20200101000000Z', '-enddate', '20991231000000Z']],
  ]) {
    openssl('req', ...ec, '-subj', `/CN=mcrs test ${who}`, '-keyout', `${who}.key`, '-out', `${who}.csr`);
    openssl('ca', '-batch', '-config', 'ca.cnf', '-cert', `${ca}.pem`, '-keyfile', `${ca}.key`, '-in', `${who}.csr`,
      '-out', `${who}.pem`, '-notext', '-extfile', 'leaf.ext', ...dates);
  }
  return {
    dir,
    path: at,
    read: (name) => fs.readFileSync(at(name)),
    /** memcached -Z with the certificate `which` ('server', 'expired', 'rogue'). */
    serverArgs: (which, ...more) => ['-Z', '-o', `ssl_chain_cert=${at(`${which}.pem`)}`, '-o', `ssl_key=${at(`${which}.key`)}`, ...more],
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

module.exports = { startMemcached, uniqueKey, sleep, freePort, pymemcacheMissing, python, makePki };
