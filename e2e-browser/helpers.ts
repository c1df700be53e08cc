import AxeBuilder from '@axe-core/playwright';
import { expect, type Page } from '@playwright/test';
import { ADMIN_PASSWORD } from './global-setup';

// What the specs on the shared server (globalSetup) have in common.

// base is the shared server's URL.
export const base = () => {
  const url = process.env.RH_BASE_URL;
  if (!url) throw new Error('RH_BASE_URL is not set: run through playwright.config.ts (globalSetup)');
  return url;
};

// signIn signs in through the form, as admin unless told otherwise.
export async function signIn(page: Page, username = 'admin', password = ADMIN_PASSWORD) {
  await page.goto(base() + '/login');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).not.toHaveURL(/\/login/);
}

// expectAccessible runs axe-core (WCAG 2.1 A and AA) on the page as it is
// and expects no violation.
export async function expectAccessible(page: Page, where: string) {
  const { violations } = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const summary = violations.map((v) => `${v.id} (${v.impact}): ${v.help}\n  ${v.nodes.map((n) => n.target.join(' ')).join('\n  ')}`);
  expect(summary, `axe violations on ${where}`).toEqual([]);
}
