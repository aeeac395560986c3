/** OCI image spec media types. */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayoutHeader: 'application/vnd.oci.layout.header.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNonDistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNonDistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociLayerNonDistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1Manifest: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1SignedManifest: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export type Compression = 'none' | 'gzip' | 'zstd';

const layerCompression: ReadonlyMap<string, Compression> = new Map([
  [MediaType.ociLayer, 'none'],
  [MediaType.ociLayerGzip, 'gzip'],
  [MediaType.ociLayerZstd, 'zstd'],
  [MediaType.ociLayerNonDistributable, 'none'],
  [MediaType.ociLayerNonDistributableGzip, 'gzip'],
  [MediaType.ociLayerNonDistributableZstd, 'zstd'],
  [MediaType.dockerLayer, 'none'],
  [MediaType.dockerLayerGzip, 'gzip'],
  [MediaType.dockerLayerZstd, 'zstd'],
  [MediaType.dockerForeignLayerGzip, 'gzip'],
]);

/** Whether `mediaType` names a layer (any compression, distributable or not). */
export function isLayer(mediaType: string): boolean {
  return layerCompression.has(mediaType);
}

/** The compression a layer media type declares; undefined for non-layers. */
export function layerCompressionOf(mediaType: string): Compression | undefined {
  return layerCompression.get(mediaType);
}

/** Whether a layer may not be pushed to a registry (foreign / non-distributable). */
export function isNonDistributable(mediaType: string): boolean {
  return mediaType.includes('nondistributable') || mediaType.includes('foreign');
}

export function isManifest(mediaType: string): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}

export function isIndex(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

export function isConfig(mediaType: string): boolean {
  return mediaType === MediaType.ociConfig || mediaType === MediaType.dockerConfig;
}

export function isSchema1(mediaType: string): boolean {
  return mediaType === MediaType.dockerSchema1Manifest || mediaType === MediaType.dockerSchema1SignedManifest;
}
