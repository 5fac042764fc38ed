/**
 * Preloaded (`node --import tsx --import ./scripts/demo-watchdog.ts …`) into every child process of `npm run demo`.
 *
 * The demo starts its children in their own process groups, so that a Ctrl-C in the terminal reaches only the demo,
 * which then stops them in order (simulated devices first, then the server). The price is that a demo killed
 * with SIGKILL cannot stop them. This module closes that gap: the demo talks to each child over an IPC channel;
 * when the channel closes without the child having been stopped, the demo is gone, and the child stops itself
 * the way a SIGTERM would (the server's own graceful shutdown), with a hard exit as a last resort.
 */
if (process.channel) {
  process.once('disconnect', () => {
    setTimeout(() => process.exit(1), 20_000).unref()
    process.kill(process.pid, 'SIGTERM')
  })
}

export {}
