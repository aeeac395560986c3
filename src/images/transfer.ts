import { setTimeout as delay } from 'node:timers/promises';
import { IngestLockedError, type Store, type WriteBlobResult, writeBlob } from '../content/index.js';
import type { Descriptor } from '../oci/index.js';
import { isRetryable, type Repository } from '../remotes/index.js';
import type { BlobTee } from './tee.js';

/** What a pull or push reports as it goes, per blob: enough for docker-style progress lines. */
export type TransferEvent =
  | { type: 'resolved'; name: string; desc: Descriptor }
  | { type: 'waiting'; desc: Descriptor }
  | { type: 'progress'; desc: Descriptor; offset: number; total: number }
  | { type: 'retrying'; desc: Descriptor; attempt: number; error: string }
  | { type: 'done'; desc: Descriptor; status: 'downloaded' | 'exists' | 'pushed' | 'mounted' | 'skipped' };

export interface TransferOpts {
  signal?: AbortSignal | undefined;
  /** Also hand the downloaded bytes to this reader (see BlobTee). */
  tee?: BlobTee | undefined;
  onEvent?: ((e: TransferEvent) => void) | undefined;
  /** Attempts per blob for failures that may pass (resets, 5xx); each resumes where the last stopped. */
  attempts?: number;
}

/** docker's word for a layer whose transfer ended, as `docker pull` and `docker push` print it. */
export function doneStatus(verb: 'pull' | 'push', status: Extract<TransferEvent, { type: 'done' }>['status']): string {
  switch (status) {
    case 'downloaded':
      return 'Pull complete';
    case 'exists':
      return verb === 'pull' ? 'Already exists' : 'Layer already exists';
    case 'pushed':
      return 'Pushed';
    case 'mounted':
      return 'Mounted from another repository';
    case 'skipped':
      return 'Skipped';
  }
}

/** The 12 hex digits docker names a layer by in progress lines. */
export const shortLayerId = (digest: string) => digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13);

/** The label containerd puts on pulled content: which repository of a registry it came from. */
export const distributionSourceLabel = (domain: string) => `containerd.io/distribution.source.${domain}`;

/** Waits `ms`; an abort rejects with an AbortError (code ABORTED). */
const sleep = (ms: number, signal?: AbortSignal) => delay(ms, undefined, { signal });

/**
 * Fetches one blob into the store, verified: skipped when the namespace (or another) already has
 * it; resumed with HTTP Range after a reset; waiting while another process downloads the same blob.
 */
export async function fetchInto(store: Store, repo: Repository, desc: Descriptor, opts: TransferOpts = {}): Promise<WriteBlobResult> {
  const attempts = opts.attempts ?? 5;
  const labels = { [distributionSourceLabel(repo.domain)]: repo.path };
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await writeBlob(store, `pull-${desc.digest}`, undefined, {
        expected: desc,
        labels,
        signal: opts.signal,
        openAt: (offset) => {
          const body = repo.fetch(desc, { offset, signal: opts.signal });
          return opts.tee ? opts.tee.wrap(offset, body) : body;
        },
        onProgress: (p) => opts.onEvent?.({ type: 'progress', desc, offset: p.offset, total: desc.size }),
      });
      opts.onEvent?.({ type: 'done', desc, status: res.created ? 'downloaded' : 'exists' });
      return res;
    } catch (err) {
      if (err instanceof IngestLockedError) {
        // Another pull is fetching this blob: wait for it to finish (or die), then look again.
        if (attempt === 1) opts.onEvent?.({ type: 'waiting', desc });
        await sleep(Math.min(50 * attempt, 500), opts.signal);
        attempt = Math.min(attempt, 2);
        continue;
      }
      if (!isRetryable(err) || attempt >= attempts) throw err;
      opts.onEvent?.({ type: 'retrying', desc, attempt, error: (err as Error).message });
      await sleep(Math.min(200 * 2 ** (attempt - 1), 5000), opts.signal);
    }
  }
}

/**
 * Runs `fn` over `items` with at most `limit` at a time. The first failure stops new work; what is
 * in flight settles before the failure is thrown, so nothing runs on after the caller has returned.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i] as T);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.err;
  return out;
}
