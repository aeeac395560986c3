import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { LocalStore } from '../content/index.js';
import { Metadata, type NamespaceScope } from '../metadata/index.js';

export interface OpenBerthOpts {
  /** The root directory; see {@link defaultRoot}. */
  root?: string;
}

/** `/var/lib/berth` for root, else `$XDG_DATA_HOME/berth` (`~/.local/share/berth`). */
export function defaultRoot(): string {
  if (process.getuid?.() === 0) return '/var/lib/berth';
  const xdg = process.env.XDG_DATA_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.local', 'share'), 'berth');
}

/**
 * Everything berth keeps under one root, wired together: the composition root the CLI (and later
 * the daemon) builds on. Several processes may open one root at once.
 */
export class Berth implements Disposable {
  readonly root: string;
  readonly content: LocalStore;
  readonly metadata: Metadata;

  private constructor(root: string, content: LocalStore, metadata: Metadata) {
    this.root = root;
    this.content = content;
    this.metadata = metadata;
  }

  /** Opens (creating when needed) the root directory. */
  static async open(opts: OpenBerthOpts = {}): Promise<Berth> {
    const root = resolve(opts.root ?? defaultRoot());
    await mkdir(root, { recursive: true, mode: 0o711 });
    const content = new LocalStore(join(root, 'content'));
    await content.init();
    const metadata = new Metadata(join(root, 'metadata.db'), content);
    return new Berth(root, content, metadata);
  }

  /** The stores of namespace `name`. @throws InvalidArgumentError for a bad name */
  namespace(name: string): NamespaceScope {
    return this.metadata.namespace(name);
  }

  close(): void {
    this.metadata.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
