import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start servers and child processes against real services.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: run files in parallel, but not so many that timing-sensitive tests starve.
    maxWorkers: 2,
    globalSetup: ['test/global-setup.ts']
  }
})
