import { defineConfig, devices } from '@playwright/test';

// Browser tests of the portal, in Debian's Chromium (/usr/bin/chromium; no
// downloaded browsers). globalSetup builds the binary once and starts it on
// a free loopback port with a fresh SQLite database; the tests share it and
// run one after another.
export default defineConfig({
  testDir: './e2e-browser',
  globalSetup: './e2e-browser/global-setup.ts',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 8_000 },
  reporter: process.env.CI ? [['list'], ['html', { open: 'never' }]] : 'list',
  use: {
    ...devices['Desktop Chrome'],
    viewport: { width: 1280, height: 800 },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  projects: [{ name: 'chromium' }],
});
