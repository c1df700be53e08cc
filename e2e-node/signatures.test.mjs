// Signatures checked by an independent implementation: the Standard
// Webhooks specification's own library (npm standardwebhooks 1.1.1) verifies
// real deliveries of a running Registry Hooks server, before and after a
// secret rotation. Run: node --test e2e-node/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { Webhook } = require('standardwebhooks');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOKEN = 'node-signature-test-token';
const HOOK = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/registryhooks/providers/Microsoft.ContainerRegistry/registries/myregistry/webhooks/signedhook';
const API = '?api-version=2025-11-01';

let dir, server, base, receiver, receiverURL;
const received = [];
let waiters = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// The next delivery to arrive (or one that already did, not yet taken).
function nextDelivery() {
  if (received.length > 0) return Promise.resolve(received.shift());
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no delivery within 20s')), 20_000);
    waiters.push((d) => { clearTimeout(t); resolve(d); });
  });
}

async function api(method, p, body) {
  const res = await fetch(base + p + API, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

before(async () => {
  receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const d = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      res.writeHead(204).end();
      const w = waiters.shift();
      if (w) w(d); else received.push(d);
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  receiverURL = `http://127.0.0.1:${receiver.address().port}/hook`;

  dir = mkdtempSync(path.join(os.tmpdir(), 'rh-sig-'));
  const bin = path.join(dir, 'registryhooks');
  execFileSync('go', ['build', '-o', bin, '.'], { cwd: root, stdio: 'inherit' });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin, ['serve', '--db', path.join(dir, 'sig.db'), '--addr', `127.0.0.1:${port}`, '--allow-private-targets'], {
    cwd: dir, env: { ...process.env, REGISTRYHOOKS_API_TOKEN: TOKEN, REGISTRYHOOKS_ADMIN_PASSWORD: 'node-test-password' }, stdio: 'ignore',
  });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(base + '/healthz')).status === 200) break;
    } catch { /* not listening yet */ }
    if (i > 300) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  await new Promise((r) => receiver.close(r));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function ping() {
  const r = await api('POST', HOOK + '/ping');
  assert.equal(r.status, 200);
  const d = await nextDelivery();
  if (d.headers['webhook-signature'] !== undefined) assert.equal(d.headers['webhook-id'], r.body.id, 'webhook-id is the payload id');
  assert.equal(JSON.parse(d.body).id, r.body.id);
  return d;
}

test('deliveries verify with standardwebhooks, before and after a rotation', async () => {
  let r = await api('PUT', HOOK, { location: 'local', properties: { serviceUri: receiverURL, actions: ['push'] } });
  assert.equal(r.status, 200, JSON.stringify(r.body));

  // Not signing yet: no signature headers.
  let d = await ping();
  assert.equal(d.headers['webhook-signature'], undefined);
  assert.equal(d.headers['webhook-id'], undefined);

  r = await api('POST', HOOK + '/regenerateSigningSecret');
  assert.equal(r.status, 200);
  const first = r.body.signingSecret;
  assert.match(first, /^whsec_[A-Za-z0-9+/]+=*$/);
  const keyLen = Buffer.from(first.slice('whsec_'.length), 'base64').length;
  assert.ok(keyLen >= 24 && keyLen <= 64, `key of ${keyLen} bytes`);
  r = await api('POST', HOOK + '/getCallbackConfig');
  assert.equal(r.body.signingSecret, first);

  d = await ping();
  const ts = Number(d.headers['webhook-timestamp']);
  assert.ok(Math.abs(ts - Date.now() / 1000) < 60, `timestamp ${ts} is now`);
  assert.equal(d.headers['webhook-signature'].split(' ').length, 1);
  const payload = new Webhook(first).verify(d.body, d.headers);
  assert.equal(payload.action, 'ping');
  // Tampering, or another secret, fails verification.
  assert.throws(() => new Webhook(first).verify(d.body.replace('ping', 'push'), d.headers));
  assert.throws(() => new Webhook('whsec_' + Buffer.alloc(32, 7).toString('base64')).verify(d.body, d.headers));

  // Rotated: both secrets' signatures for 24 hours, so either verifies.
  r = await api('POST', HOOK + '/regenerateSigningSecret');
  const second = r.body.signingSecret;
  assert.notEqual(second, first);
  d = await ping();
  assert.equal(d.headers['webhook-signature'].split(' ').length, 2);
  assert.equal(new Webhook(second).verify(d.body, d.headers).action, 'ping');
  assert.equal(new Webhook(first).verify(d.body, d.headers).action, 'ping');
});
