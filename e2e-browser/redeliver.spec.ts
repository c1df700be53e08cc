import { expect, test, type Page } from '@playwright/test';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { base, signIn } from './helpers';

// Bulk redeliver from the webhook page: a receiver that was down (500)
// gets the failed event again, same payload and id, once it is fixed.

const HOOK = 'replayhook1';

type Received = { headers: http.IncomingHttpHeaders; body: string };

// A receiver that answers 500 until fixed, then 200.
function startFlakyReceiver() {
  const received: Received[] = [];
  let fixed = false;
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(fixed ? 200 : 500, { 'Content-Type': 'text/plain' });
      res.end(fixed ? 'ok' : 'down for a deploy');
    });
  });
  return new Promise<{ url: string; received: Received[]; fix: () => void; close: () => Promise<void> }>((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/hook`,
        received,
        fix: () => { fixed = true; },
        close: () => new Promise<void>((r) => srv.close(() => r())),
      });
    });
  });
}

test('bulk redeliver: failed events since a time are sent again, same payload and id', async ({ page }) => {
  // Two failed attempts with back-off, then a redelivery: more steps than
  // most tests, on a machine that may be busy.
  test.setTimeout(90_000);
  const rcv = await startFlakyReceiver();
  try {
    await signIn(page);
    await page.goto(base() + '/registries/myregistry/webhooks/new');
    await page.getByLabel('Webhook name').fill(HOOK);
    await page.getByLabel('Service URI').fill(rcv.url);
    await page.getByLabel('Scope').fill('replay/app:*');
    await page.getByRole('button', { name: 'Create' }).click();
    await expect(page).toHaveURL(/\/registries\/myregistry\/webhooks$/);

    // A push from a script, with the registry's ingest token.
    await page.goto(base() + '/registries');
    const token = (await page.locator('code', { hasText: /^rhi_/ }).first().innerText()).trim();
    const res = await page.request.post(base() + '/ingest/events/myregistry', {
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      data: { action: 'push', target: { repository: 'replay/app', tag: 'v1', digest: 'sha256:' + 'a'.repeat(64), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1234 } },
    });
    expect(res.status()).toBe(202);

    // The server runs with --max-attempts 2: two 500s, then failed.
    await expect.poll(() => rcv.received.length, { timeout: 15_000 }).toBe(2);
    const first = JSON.parse(rcv.received[0].body);
    await page.goto(base() + '/registries/myregistry/webhooks/' + HOOK);
    const table = page.getByRole('table');
    const row = table.locator(`tr[data-event-id="${first.id}"]`);
    await expect(row).toHaveCount(1);
    await expect(row).toContainText('500');
    await expect(row).toContainText('2 attempts', { timeout: 10_000 });

    // The receiver is fixed; replay what failed in the last hour.
    rcv.fix();
    const since = new Date(Date.now() - 3600_000).toISOString().slice(0, 19);
    await page.getByLabel('Failed since (UTC)').fill(since);
    await page.getByRole('button', { name: 'Redeliver failed' }).click();
    await expect(page.getByText(/1 failed event since .* queued again/)).toBeVisible();

    // A new row for the same event shows 200 OK without a reload.
    await expect(table.locator(`tr[data-event-id="${first.id}"]`)).toHaveCount(2);
    await expect(table.locator(`tr[data-event-id="${first.id}"]`).first()).toContainText('200 OK', { timeout: 10_000 });
    expect(rcv.received.length).toBe(3);
    expect(rcv.received[2].body).toBe(rcv.received[0].body);

    // Nothing failed since: a second press queues nothing.
    await page.getByRole('button', { name: 'Redeliver failed' }).click();
    await expect(page.getByText(/0 failed events since .* queued again/)).toBeVisible();
  } finally {
    await rcv.close();
  }
});
