/**
 * Hands a blob's bytes to a second reader (the unpacker) while the download writes them to the
 * content store, so a layer is decompressed and applied as it arrives. The reader holds at most
 * `limit` bytes: a slower reader slows the download rather than filling memory.
 *
 * The stream is offered only when the download starts at byte 0; a blob already stored, or an ingest
 * resumed from an earlier process, is read from the store instead (`stream()` gives undefined).
 * A retry that starts again below what was handed on skips what the reader already has.
 */
export class BlobTee {
  readonly #limit: number;
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #delivered = 0;
  #ended = false;
  #error: unknown;
  #wake: (() => void) | undefined;
  #space: (() => void) | undefined;
  #decide!: (streaming: boolean) => void;
  readonly #decision = new Promise<boolean>((resolve) => {
    this.#decide = resolve;
  });
  #decided = false;

  constructor(
    readonly size: number,
    opts: { limit?: number } = {},
  ) {
    this.#limit = opts.limit ?? 4 << 20;
  }

  /** Wraps the download's source starting at `offset`: every byte passes through, the new ones are handed on. */
  async *wrap(offset: number, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    if (!this.#decided) this.#settle(offset === 0);
    let pos = offset;
    for await (const chunk of source) {
      const end = pos + chunk.length;
      if (this.#streaming && end > this.#delivered) {
        if (pos > this.#delivered) this.#fail(new Error(`download resumed at ${pos}, after the ${this.#delivered} bytes handed on`));
        else await this.#push(chunk.subarray(this.#delivered - pos));
      }
      pos = end;
      yield chunk;
    }
  }

  get #streaming(): boolean {
    return this.#decided && !this.#ended && this.#error === undefined;
  }

  #fail(err: unknown): void {
    this.#error ??= err;
    this.#wake?.();
  }

  /** No stream will come (the blob was there, or the download failed before it started). */
  cancel(err?: unknown): void {
    if (!this.#decided) this.#settle(false);
    else if (err !== undefined && !this.#ended) this.#fail(err);
  }

  /** The bytes as they arrive, or undefined when the reader should read the stored blob instead. */
  async stream(): Promise<AsyncIterable<Uint8Array> | undefined> {
    return (await this.#decision) ? this.#read() : undefined;
  }

  #settle(streaming: boolean): void {
    this.#decided = true;
    if (!streaming) this.#ended = true;
    this.#decide(streaming);
  }

  async #push(chunk: Uint8Array): Promise<void> {
    while (this.#buffered >= this.#limit && this.#error === undefined) {
      await new Promise<void>((r) => {
        this.#space = r;
      });
    }
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    this.#delivered += chunk.length;
    if (this.#delivered >= this.size) this.#ended = true;
    this.#wake?.();
  }

  async *#read(): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        const chunk = this.#chunks.shift();
        if (chunk) {
          this.#buffered -= chunk.length;
          this.#space?.();
          yield chunk;
          continue;
        }
        if (this.#error !== undefined) throw this.#error;
        if (this.#ended) return;
        await new Promise<void>((r) => {
          this.#wake = r;
        });
      }
    } finally {
      // A reader that stops early must not hold the download up.
      this.#error ??= new Error('reader gone');
      this.#chunks.length = 0;
      this.#buffered = 0;
      this.#space?.();
    }
  }
}
