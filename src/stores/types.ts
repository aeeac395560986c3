import type { Descriptor, Digest } from '../oci/index.js';

export type StoreKind = 'docker' | 'containerd';

/** One layer of a foreign store's image, in the sizes that store keeps. */
export interface StoreLayer {
  diffID: Digest;
  chainID: Digest;
  /** The compressed blob and its size, where the store keeps it (containerd does; docker's classic store does not). */
  digest?: Digest;
  compressed?: number;
  /** Sum of the files' sizes, as docker counts them; null when the layer is not unpacked. */
  unpacked: number | null;
  /** What the layer's snapshot or directory takes on disk; null when it is not unpacked. */
  onDisk: number | null;
  /** The unpacked directory (containerd's snapshot, docker's layer diff). */
  dir?: string;
}

/** One image of a foreign store with its size views (DESIGN.md, "The size views of one image"). */
export interface StoreImage {
  store: StoreKind;
  /** containerd's namespace; `moby` for docker's containerd store, empty for docker's classic store. */
  namespace: string;
  name: string;
  /** The config digest: the same image ID in every store. */
  id: Digest;
  target?: Descriptor;
  manifest?: Descriptor;
  layers: StoreLayer[];
  /** index + manifest + config + compressed layers (ctr, crictl); null where the store keeps no compressed content. */
  contentSize: number | null;
  /** Sum of the layers' unpacked sizes (docker images); null unless every layer is unpacked. */
  unpackedSize: number | null;
  /** The blobs and snapshots, or layer directories, the image uses, each counted once. */
  onDisk: number;
  /** Of onDisk, what no other image uses, and what others use too. */
  unique: number;
  shared: number;
  /** The parts counted in onDisk (blob, snapshot or layer keys), for unique and shared. */
  parts: { key: string; size: number }[];
}

export interface StoreTotals {
  images: number;
  blobs: { count: number; size: number } | null;
  snapshots: { count: number; size: number };
}

/** What `store explain` reports of one store. */
export interface StoreReport {
  kind: StoreKind;
  root: string;
  /** Where the images were read: the containerd namespaces, or docker's layout. */
  layout: string;
  namespaces: string[];
  images: StoreImage[];
  totals: StoreTotals;
}
