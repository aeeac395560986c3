import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { type Descriptor, parseDescriptor } from '../oci/index.js';
import { parseLabels } from './db.js';
import { validateLabels } from './identifiers.js';
import { ScopedStore } from './scoped.js';

/** A name in a namespace pointing at a manifest or index: what `berth images` lists. */
export interface Image {
  name: string;
  target: Descriptor;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

interface Row {
  name: string;
  media_type: string;
  digest: string;
  size: number;
  annotations: string | null;
  labels: string;
  created_at: number;
  updated_at: number;
}

function toImage(r: Row): Image {
  const target: Descriptor = parseDescriptor({ mediaType: r.media_type, digest: r.digest, size: r.size });
  if (r.annotations) target.annotations = parseLabels(r.annotations);
  return { name: r.name, target, labels: parseLabels(r.labels), createdAt: new Date(r.created_at), updatedAt: new Date(r.updated_at) };
}

function validateName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 4096 || name.includes('\0')) {
    throw new InvalidArgumentError(`invalid image name ${JSON.stringify(String(name).slice(0, 100))}`);
  }
}

/** Image records of one namespace. */
export class ImageStore extends ScopedStore {
  /** @throws NotFoundError (for the image, or for the namespace) */
  get(name: string): Image {
    validateName(name);
    return this.db.read(() => {
      const r = this.db.stmt('SELECT * FROM images WHERE namespace = ? AND name = ?').get(this.namespace, name) as Row | undefined;
      if (!r) {
        this.namespaces.get(this.namespace);
        throw new NotFoundError(`image "${name}": not found`);
      }
      return toImage(r);
    });
  }

  /** All images of the namespace, by name. @throws NotFoundError when the namespace does not exist */
  list(): Image[] {
    return this.db.read(() => {
      this.namespaces.get(this.namespace);
      return (this.db.stmt('SELECT * FROM images WHERE namespace = ? ORDER BY name').all(this.namespace) as Row[]).map(toImage);
    });
  }

  /** @throws AlreadyExistsError */
  create(image: Pick<Image, 'name' | 'target'> & { labels?: Record<string, string> }): Image {
    return this.#write(image, 'create');
  }

  /** Creates the image or points the existing name at a new target (a re-pull or re-tag). */
  put(image: Pick<Image, 'name' | 'target'> & { labels?: Record<string, string> }): Image {
    return this.#write(image, 'put');
  }

  /** @throws NotFoundError */
  delete(name: string): void {
    validateName(name);
    this.db.immediate(() => {
      const r = this.db.stmt('DELETE FROM images WHERE namespace = ? AND name = ?').run(this.namespace, name);
      if (r.changes === 0) throw new NotFoundError(`image "${name}": not found`);
    });
  }

  #write(image: Pick<Image, 'name' | 'target'> & { labels?: Record<string, string> }, mode: 'create' | 'put'): Image {
    validateName(image.name);
    const target = parseDescriptor(image.target);
    const labels = validateLabels(image.labels ?? {});
    const now = Date.now();
    return this.db.immediate(() => {
      this.namespaces.ensureSync(this.namespace);
      const existing = this.db.sqlite
        .prepare('SELECT created_at FROM images WHERE namespace = ? AND name = ?')
        .get(this.namespace, image.name) as { created_at: number } | undefined;
      if (existing && mode === 'create') throw new AlreadyExistsError(`image "${image.name}": already exists`);
      this.db.sqlite
        .prepare(
          `INSERT INTO images (namespace, name, media_type, digest, size, annotations, labels, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (namespace, name) DO UPDATE SET media_type = excluded.media_type, digest = excluded.digest,
             size = excluded.size, annotations = excluded.annotations, labels = excluded.labels, updated_at = excluded.updated_at`,
        )
        .run(
          this.namespace,
          image.name,
          target.mediaType,
          target.digest,
          target.size,
          target.annotations ? JSON.stringify(target.annotations) : null,
          JSON.stringify(labels),
          existing?.created_at ?? now,
          now,
        );
      return { name: image.name, target, labels, createdAt: new Date(existing?.created_at ?? now), updatedAt: new Date(now) };
    });
  }
}
