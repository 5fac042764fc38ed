/** A failure the demo explains in a sentence, optionally followed by the last lines of a child's log. */
export class DemoError extends Error {
  constructor(
    message: string,
    readonly logTail?: { file: string; title: string }
  ) {
    super(message)
  }
}

/** Ctrl-C, SIGTERM or SIGHUP arrived while a step was under way: not a failure. */
export class Stopped extends Error {}
