import { bold, dim, step } from './output.js'

/** A counter on one line: rewritten in place on a terminal, printed at 0 %, 50 % and 100 % otherwise. */
export class Progress {
  private done = 0
  private last = -1
  constructor(
    private readonly label: string,
    private readonly what: string,
    private readonly total: number
  ) {
    this.render()
  }
  tick(): void {
    this.done++
    this.render()
  }
  private render(): void {
    const text = `${this.what} ${this.done}/${this.total}`
    if (process.stdout.isTTY) {
      const width = 24
      const filled = Math.round((width * this.done) / this.total)
      const bar = '█'.repeat(filled) + dim('░'.repeat(width - filled))
      process.stdout.write(`\r  ${bold(this.label.padEnd(12))} ${bar} ${text}\x1b[K`)
      if (this.done === this.total) process.stdout.write('\n')
      return
    }
    const quarter = Math.floor((2 * this.done) / this.total)
    if (quarter !== this.last) {
      this.last = quarter
      step(this.label, text)
    }
  }
}
