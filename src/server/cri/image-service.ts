import { criCredentials, imageFsInfo, imageStatus, listImages, normalizeImage, pullImage, removeImage } from '../../pods/index.js';
import type { CriContext, Handler } from './context.js';

// ImageService: translation only; the pods service does the work.

type Req<T> = T & Record<string, unknown>;

export function imageService(ctx: CriContext): Record<string, Handler> {
  const { pods } = ctx;
  return {
    ListImages: async (req: Req<{ filter?: { image?: { image?: string } } }>) => ({
      images: await listImages(pods, req.filter?.image?.image || undefined),
    }),
    ImageStatus: async (req: Req<{ image?: { image?: string }; verbose?: boolean }>) => {
      const st = await imageStatus(pods, req.image?.image ?? '');
      if (!st) return {};
      const r = st.row.resolved;
      return {
        image: st.image,
        info:
          req.verbose && r
            ? { info: JSON.stringify({ imageSpec: r.config.value, manifest: r.manifestDesc, name: st.row.image.name }) }
            : {},
      };
    },
    PullImage: async (req: Req<{ image?: { image?: string }; auth?: Parameters<typeof criCredentials>[0] }>) => {
      const raw = req.image?.image ?? '';
      const creds = criCredentials(req.auth);
      const session = ctx.session(creds ? { domain: normalizeImage(raw).domain, ...creds } : undefined);
      try {
        return { image_ref: await pullImage(pods, raw, session) };
      } finally {
        await session.close();
      }
    },
    RemoveImage: async (req: Req<{ image?: { image?: string } }>) => {
      await removeImage(pods, req.image?.image ?? '');
      return {};
    },
    ImageFsInfo: async () => {
      const fs = await imageFsInfo(pods);
      return {
        image_filesystems: [
          {
            timestamp: String(BigInt(Date.now()) * 1_000_000n),
            fs_id: { mountpoint: fs.mountpoint },
            used_bytes: { value: String(fs.usedBytes) },
            inodes_used: { value: String(fs.inodesUsed) },
          },
        ],
        container_filesystems: [],
      };
    },
  };
}
