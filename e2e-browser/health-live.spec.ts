import { expect, test, type Page } from '@playwright/test';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { base, expectAccessible, signIn } from './helpers';

// The webhook page follows a Ping without a reload: the Health cards count
// it pending while the receiver holds the request, then succeeded; the
// events table shows its row and then the answer. Both stop polling once
// nothing is in flight.

const HOOK = 'healthlive1';

// A loopback receiver that holds each request until released (or 2.5 s,
// under the server's 3 s delivery timeout), then answers 200.
function startHoldingReceiver() {
  let received = 0;
  const waiting: (() => void)[] = [];
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      const answer = () => {
        if (res.writableEnded) return;
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('ok');
      };
      waiting.push(answer);
      setTimeout(answer, 2_500);
    });
  });
  return new Promise<{ url: string; received: () => number; release: () => void; close: () => Promise<void> }>((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/hook`,
        received: () => received,
        release: () => { for (const f of waiting.splice(0)) f(); },
        close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
      });
    });
  });
}

test('Ping: the Health cards and the events table follow the delivery without a reload', async ({ page }) => {
  test.setTimeout(60_000);
  const rcv = await startHoldingReceiver();
  try {
    await signIn(page);
    await page.goto(base() + '/registries/myregistry/webhooks/new');
    await page.getByLabel('Webhook name').fill(HOOK);
    await page.getByLabel('Service URI').fill(rcv.url);
    await page.getByRole('group', { name: 'Actions' }).getByLabel('push', { exact: true }).check();
    await page.getByRole('button', { name: 'Create' }).click();
    await expect(page).toHaveURL(/\/registries\/myregistry\/webhooks$/);
    await page.getByRole('link', { name: HOOK }).click();
    await expect(page.getByRole('heading', { name: HOOK })).toBeVisible();

    const day = page.getByTestId('health-24 hours');
    const week = page.getByTestId('health-7 days');
    await expect(day).toContainText('0 deliveries: 0 succeeded, 0 failed, 0 pending');
    await expect(day).toContainText('no finished deliveries');
    const events = page.getByRole('table').filter({ has: page.getByRole('columnheader', { name: 'Event ID' }) });
    await expect(events.getByRole('row').filter({ hasText: 'ping' })).toHaveCount(0);
    // Nothing in flight: neither polls.
    await expect(page.locator('#health')).not.toHaveAttribute('hx-trigger', /every/);
    await expect(page.locator('#events')).not.toHaveAttribute('hx-trigger', /every/);

    await page.evaluate(() => { (window as unknown as { __noReload: string }).__noReload = 'still here'; });
    await page.getByRole('button', { name: 'Ping' }).click();

    // The receiver holds the request: pending in both cards and the table.
    await expect.poll(() => rcv.received(), { timeout: 5_000 }).toBe(1);
    await expect(day).toContainText('1 deliveries: 0 succeeded, 0 failed, 1 pending', { timeout: 2_000 });
    await expect(week).toContainText('1 deliveries: 0 succeeded, 0 failed, 1 pending');
    const row = events.getByRole('row').filter({ hasText: 'ping' });
    await expect(row).toHaveCount(1);
    await expect(row).toContainText('Pending');
    await expect(page.locator('#health')).toHaveAttribute('hx-trigger', /every 2s/);
    // Polled, so not a live region (as the blade's table): no chatter.
    await expect(page.locator('#health[aria-live], #health [aria-live], #events[aria-live], #events [aria-live]')).toHaveCount(0);
    await expectAccessible(page, 'the webhook page with a Ping in flight');

    rcv.release();
    await expect(day).toContainText('1 deliveries: 1 succeeded, 0 failed, 0 pending', { timeout: 10_000 });
    await expect(day).toContainText('100% succeeded');
    await expect(week).toContainText('1 deliveries: 1 succeeded, 0 failed, 0 pending');
    await expect(row).toContainText('200 OK');
    // Idle again: both stop polling.
    await expect(page.locator('#health')).not.toHaveAttribute('hx-trigger', /every/);
    await expect(page.locator('#events')).not.toHaveAttribute('hx-trigger', /every/);
    expect(await page.evaluate(() => (window as unknown as { __noReload?: string }).__noReload)).toBe('still here');
    await expectAccessible(page, 'the webhook page after the Ping');
  } finally {
    await rcv.close();
    // The specs share one server, and portal.spec.ts starts from an empty
    // blade: leave none of ours behind, whatever happened above.
    await removeWebhook(page);
  }
});

async function removeWebhook(page: Page) {
  const url = `${base()}/registries/myregistry/webhooks/${HOOK}`;
  if ((await page.request.get(url)).status() === 404) return;
  await page.goto(url);
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await expect(page).toHaveURL(/\/registries\/myregistry\/webhooks$/);
  expect((await page.request.get(url)).status()).toBe(404);
}
