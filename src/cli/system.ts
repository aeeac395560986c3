import type { Command } from 'commander';
import { schemaVersion } from '../metadata/index.js';
import { formatPlatform, hostPlatform } from '../oci/index.js';
import { example, withBerth } from './context.js';
import { humanSize, printJSON } from './output.js';
import { berthVersion } from './version.js';

export function registerSystem(program: Command): void {
  example(
    program
      .command('version')
      .description('Show the version of berth and its parts')
      .action(async (_o: unknown, cmd: Command) => {
        const format = (cmd.optsWithGlobals() as { format?: string }).format ?? 'table';
        const v = {
          version: berthVersion,
          node: process.versions.node,
          sqlite: process.versions.sqlite ?? undefined,
          metadataSchema: schemaVersion,
          platform: formatPlatform(hostPlatform()),
        };
        if (format === 'json') printJSON(v);
        else {
          process.stdout.write(
            `berth:            ${v.version}\nNode.js:          ${v.node}\nmetadata schema:  ${v.metadataSchema}\nplatform:         ${v.platform}\n`,
          );
        }
      }),
    'berth version --format json',
  );

  example(
    program
      .command('info')
      .description('Show the root, store usage and namespaces')
      .action(async (_o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          let blobs = 0;
          let bytes = 0;
          for await (const i of b.content.list()) {
            blobs++;
            bytes += i.size;
          }
          let ingests = 0;
          let ingestBytes = 0;
          for await (const s of b.content.listStatuses()) {
            ingests++;
            ingestBytes += s.offset;
          }
          const db = b.metadata.db.sqlite;
          const count = (sql: string, ns: string) => (db.prepare(sql).get(ns) as { n: number }).n;
          const namespaces = b.metadata.namespaces.list().map((n) => ({
            name: n.name,
            images: count('SELECT count(*) AS n FROM images WHERE namespace = ?', n.name),
            blobs: count('SELECT count(*) AS n FROM blobs WHERE namespace = ?', n.name),
            leases: count('SELECT count(*) AS n FROM leases WHERE namespace = ?', n.name),
          }));
          const info = {
            root: b.root,
            version: berthVersion,
            platform: formatPlatform(hostPlatform()),
            content: { blobs, size: bytes, ingests, ingestSize: ingestBytes },
            namespaces,
          };
          if (g.format === 'json') {
            printJSON(info);
            return;
          }
          const lines = [
            `Root: ${info.root}`,
            `Version: ${info.version}`,
            `Platform: ${info.platform}`,
            'Content store:',
            ` Blobs: ${blobs} (${humanSize(bytes)}, each stored once)`,
            ` Ingests in progress or interrupted: ${ingests} (${humanSize(ingestBytes)})`,
            `Namespaces: ${namespaces.length}`,
            ...namespaces.map((n) => ` ${n.name}: ${n.images} images, ${n.blobs} blobs, ${n.leases} leases`),
          ];
          process.stdout.write(`${lines.join('\n')}\n`);
        }),
      ),
    'berth info',
  );
}
