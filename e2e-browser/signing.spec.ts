import { expect, test, type Page } from '@playwright/test';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { base, expectAccessible, signIn } from './helpers';

// Signing secret rotation from the webhook page, checked by an independent
// implementation: the Standard Webhooks specification's own library (npm
// standardwebhooks 1.1.1) verifies the deliveries a loopback receiver gets.
const require = createRequire(__filename);
const { Webhook } = require('standardwebhooks') as {
  Webhook: new (secret: string) => { verify(payload: string, headers: Record<string, string>): { id: string; action: string } };
};

const HOOK = 'signedhook1';
// A secret the server never made: its signatures must not verify.
const WRONG = 'whsec_' + Buffer.alloc(32, 7).toString('base64');

type Delivery = { headers: Record<string, string>; body: string };

// A receiver that answers 204 and hands deliveries out in arrival order.
function startReceiver() {
  const queued: Delivery[] = [];
  const waiters: ((d: Delivery) => void)[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      const d = { headers, body: Buffer.concat(chunks).toString('utf8') };
      res.writeHead(204).end();
      const w = waiters.shift();
      if (w) w(d);
      else queued.push(d);
    });
  });
  const next = (timeout = 20_000): Promise<Delivery> => {
    const d = queued.shift();
    if (d) return Promise.resolve(d);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no delivery within ${timeout} ms`)), timeout);
      waiters.push((got) => { clearTimeout(t); resolve(got); });
    });
  };
  return new Promise<{ url: string; next: typeof next; pending: () => number; close: () => Promise<void> }>((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/hook`,
        next,
        pending: () => queued.length,
        // The dispatcher keeps connections alive: drop the dispatcher's idle connections so close is prompt.
        close: () => new Promise<void>((r) => { srv.close(() => r()); srv.closeAllConnections(); }),
      });
    });
  });
}

// The secret shown once in the status message after Generate/Regenerate;
// focus moves to it (the pressed button is replaced by the answer).
async function shownSecret(page: Page): Promise<string> {
  const note = page.getByRole('status').filter({ hasText: 'New signing secret' });
  await expect(note).toBeVisible();
  await expect(note).toBeFocused();
  const secret = (await note.getByText(/^whsec_/).innerText()).trim();
  expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
  const keyLen = Buffer.from(secret.slice('whsec_'.length), 'base64').length;
  expect(keyLen).toBeGreaterThanOrEqual(24);
  expect(keyLen).toBeLessThanOrEqual(64);
  return secret;
}


const verifies = (secret: string, d: Delivery) => {
  try {
    new Webhook(secret).verify(d.body, d.headers);
    return true;
  } catch {
    return false;
  }
};

test('signing secret: generated and rotated from the webhook page, deliveries verify with standardwebhooks', async ({ page }) => {
  // Two Pings and two page reloads on a machine that may be busy.
  test.setTimeout(90_000);
  const rcv = await startReceiver();
  try {
    await signIn(page);
    await page.goto(base() + '/registries/myregistry/webhooks/new');
    await page.getByLabel('Webhook name').fill(HOOK);
    await page.getByLabel('Service URI').fill(rcv.url);
    await page.getByRole('button', { name: 'Create' }).click();
    await expect(page).toHaveURL(/\/registries\/myregistry\/webhooks$/);
    await page.getByRole('link', { name: HOOK, exact: true }).click();
    await expect(page.getByRole('heading', { level: 1, name: HOOK })).toBeVisible();
    const hookURL = page.url();

    // Pressing Ping: waits for the events table to show the delivery.
    const ping = async () => {
      await page.getByRole('button', { name: 'Ping', exact: true }).click();
      const d = await rcv.next();
      const payload = JSON.parse(d.body);
      expect(payload.action).toBe('ping');
      await expect(page.getByRole('table').locator(`tr[data-event-id="${payload.id}"]`)).toContainText('204', { timeout: 15_000 });
      return d;
    };

    // Not signed yet, and a Ping carries no signature headers.
    await expect(page.getByText('not signed')).toBeVisible();
    let d = await ping();
    expect(d.headers['webhook-signature']).toBeUndefined();

    // Generate: the secret is shown once, in a status message.
    await page.getByRole('button', { name: 'Generate signing secret' }).click();
    const first = await shownSecret(page);
    await expect(page.getByRole('button', { name: 'Regenerate signing secret' })).toBeVisible();
    await expectAccessible(page, 'the webhook page with a new signing secret shown');

    // After a reload the page says it signs, and the secret is gone from it...
    await page.reload();
    await expect(page.getByText('signed', { exact: true })).toBeVisible();
    expect(await page.content()).not.toContain('whsec_');
    // ...until a Contributor presses Show.
    await page.getByRole('button', { name: 'Show', exact: true }).click();
    await expect(page.getByText(`Signing secret: ${first}`)).toBeVisible();
    await expectAccessible(page, 'the webhook page with the callback configuration and signing secret shown');

    // A Ping is signed with it: one v1 signature, over this delivery.
    d = await ping();
    const payload = JSON.parse(d.body);
    expect(d.headers['webhook-id']).toBe(payload.id);
    expect(Math.abs(Number(d.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(d.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(first).verify(d.body, d.headers).id).toBe(payload.id);
    expect(verifies(WRONG, d)).toBe(false);
    expect(verifies(first, { ...d, body: d.body.replace('"ping"', '"push"') })).toBe(false);

    // Regenerate, from the keyboard: a new secret, shown once; the old one
    // keeps signing for 24 h.
    await page.goto(hookURL);
    await page.getByRole('button', { name: 'Regenerate signing secret' }).focus();
    await page.keyboard.press('Enter');
    const second = await shownSecret(page);
    expect(second).not.toBe(first);
    await page.reload();
    expect(await page.content()).not.toContain('whsec_');
    await page.getByRole('button', { name: 'Show', exact: true }).click();
    await expect(page.getByText(`Signing secret: ${second}`)).toBeVisible();

    d = await ping();
    const sigs = d.headers['webhook-signature'].split(' ');
    expect(sigs).toHaveLength(2);
    for (const s of sigs) expect(s).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    // Either secret verifies the delivery; a wrong one does not.
    expect(new Webhook(second).verify(d.body, d.headers).action).toBe('ping');
    expect(new Webhook(first).verify(d.body, d.headers).action).toBe('ping');
    expect(verifies(WRONG, d)).toBe(false);
    // The new secret's signature comes first, the old one's follows.
    const only = (sig: string) => ({ ...d, headers: { ...d.headers, 'webhook-signature': sig } });
    expect(verifies(second, only(sigs[0]))).toBe(true);
    expect(verifies(first, only(sigs[1]))).toBe(true);
    expect(verifies(first, only(sigs[0]))).toBe(false);

    // Nothing else arrived (no retries of a 204).
    expect(rcv.pending()).toBe(0);
  } finally {
    await rcv.close();
  }
});
