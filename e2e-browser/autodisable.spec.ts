import { expect, test } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// Auto-disable needs a short window, so this test runs a server of its own
// (the binary global-setup built) with REGISTRYHOOKS_AUTO_DISABLE_AFTER=4s,
// and a receiver that fails until the test fixes it.
const PASSWORD = 'e2e-autodisable-password-1';
const INGEST = 'e2e-autodisable-ingest-token-0123456789abcdef';
const API = 'e2e-autodisable-api-token-0123456789abcdef';
const HOOK = 'deadhook1';
const ARM = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/registryhooks/providers/Microsoft.ContainerRegistry/registries/myregistry';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

let child: ChildProcess;
let dir: string;
let base: string;
let receiver: http.Server;
let receiverURL: string;
let status = 503;
let answered = { ok: 0, failed: 0 };

test.beforeAll(async () => {
  const bin = process.env.RH_BIN;
  if (!bin) throw new Error('RH_BIN is not set: run through playwright.config.ts (globalSetup)');
  receiver = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (status < 300) answered.ok++;
      else answered.failed++;
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  receiverURL = `http://127.0.0.1:${(receiver.address() as net.AddressInfo).port}/hook`;

  dir = mkdtempSync(path.join(os.tmpdir(), 'rh-e2e-ad-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const log = openSync(path.join(dir, 'server.log'), 'w');
  child = spawn(bin, ['serve', '--db', path.join(dir, 'ad.db'), '--addr', `127.0.0.1:${port}`, '--allow-private-targets',
    '--max-attempts', '3', '--retry-schedule', '1s,1s'], {
    cwd: dir,
    env: {
      ...process.env, REGISTRYHOOKS_ADMIN_PASSWORD: PASSWORD, REGISTRYHOOKS_INGEST_TOKEN: INGEST,
      REGISTRYHOOKS_API_TOKEN: API, REGISTRYHOOKS_AUTO_DISABLE_AFTER: '4s',
    },
    stdio: ['ignore', log, log],
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(base + '/healthz')).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start; see ${dir}/server.log`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

test.afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  }
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
  if (dir && !process.env.RH_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
});

async function ingestOne(i: number) {
  const res = await fetch(base + '/ingest/events/myregistry', {
    method: 'POST',
    headers: { Authorization: `Bearer ${INGEST}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      action: 'push',
      target: { repository: 'team/app', tag: `v${i}`, digest: 'sha256:' + 'a'.repeat(64),
        mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1234 },
    }),
  });
  expect(res.status).toBe(202);
}

test('auto-disabled: a failing webhook shows the banner and the blade marker; Enable turns it back on and its held deliveries go out', async ({ page }) => {
  test.setTimeout(150_000);
  const put = await fetch(`${base}${ARM}/webhooks/${HOOK}?api-version=2023-07-01`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${API}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ location: 'local', properties: { serviceUri: receiverURL, actions: ['push'], status: 'enabled' } }),
  });
  expect(put.status).toBe(200);

  // Events keep coming and every delivery fails (3 attempts each), until
  // the system disables the webhook.
  let ingesting = true;
  const feeder = (async () => {
    for (let i = 0; ingesting; i++) {
      await ingestOne(i);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();

  await page.goto(base + '/login');
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).not.toHaveURL(/\/login/);

  const hookURL = `${base}/registries/myregistry/webhooks/${HOOK}`;
  const banner = page.getByRole('status').filter({ hasText: 'auto-disabled' });
  await expect(async () => {
    await page.goto(hookURL);
    await expect(banner).toBeVisible({ timeout: 500 });
  }).toPass({ timeout: 90_000, intervals: [500] });
  ingesting = false;
  await feeder;

  await expect(banner).toContainText('No delivery succeeded for 4s');
  await expect(banner).toContainText('503 Service Unavailable');
  await expect(page.getByRole('heading', { level: 1 })).toContainText('disabled');
  const text = (await banner.innerText()).replace(/\s+/g, ' ');
  const m = /(\d+) pending deliver(?:y is|ies are) held/.exec(text);
  const held = m ? Number(m[1]) : 0;
  expect(held, `banner: ${text}`).toBeGreaterThan(0);

  // The blade marks the row, with why and since when.
  await page.goto(`${base}/registries/myregistry/webhooks`);
  const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: HOOK }) });
  await expect(row).toContainText('auto-disabled');
  await expect(row).toContainText('since');
  await expect(row).toContainText('No delivery succeeded');

  // The audit trail has it, by system.
  await page.goto(`${base}/audit`);
  const entry = page.getByRole('row').filter({ hasText: 'webhook.auto_disable' });
  await expect(entry).toHaveCount(1);
  await expect(entry).toContainText('system');
  await expect(entry).toContainText(`myregistry/${HOOK}`);

  // The receiver is fixed; one click on Enable turns the webhook back on.
  status = 200;
  await page.goto(hookURL);
  await page.getByRole('button', { name: 'Enable' }).click();
  await expect(page.getByRole('button', { name: 'Disable' })).toBeVisible();
  await expect(page.getByText('auto-disabled')).toHaveCount(0);
  await expect(page.getByRole('heading', { level: 1 })).toContainText('enabled');
  // The held deliveries go out.
  await expect.poll(() => answered.ok, { timeout: 15_000 }).toBeGreaterThanOrEqual(held);

  await page.goto(`${base}/registries/myregistry/webhooks`);
  const row2 = page.getByRole('row').filter({ has: page.getByRole('link', { name: HOOK }) });
  await expect(row2).toBeVisible();
  await expect(row2).not.toContainText('auto-disabled');
});
