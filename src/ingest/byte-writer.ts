/**
 * A growing buffer for the ingest log's append: the entries' bodies of one script call, written back to back, strings
 * encoded once and payloads copied, sent as one argument (ingest-log.ts).
 */
export class ByteWriter {
  private buf: Buffer
  length = 0

  constructor(expected: number) {
    this.buf = Buffer.allocUnsafe(Math.max(4096, expected + (expected >> 2)))
  }

  string(s: string): void {
    this.reserve(s.length * 3)
    this.length += this.buf.write(s, this.length)
  }

  bytes(b: Buffer): void {
    this.reserve(b.length)
    this.length += b.copy(this.buf, this.length)
  }

  bytesWritten(): Buffer {
    return this.buf.subarray(0, this.length)
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n))
    this.buf.copy(bigger, 0, 0, this.length)
    this.buf = bigger
  }
}
