// Test support: keys and certificates made with openssl (TLS registries, the daemon's TLS hosts).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh } from './peers.js';

/** An RSA key and a self-signed certificate for `cn`, valid two days (a server, or a CA). */
export async function selfSignedCert(keyPath: string, certPath: string, cn: string, extra: string[] = []): Promise<void> {
  await sh('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
    ...extra,
  ]);
}

/**
 * `<dir>/<name>.key` and `<dir>/<name>.cert` for `/CN=<name>`, signed by the CA `ca`, valid two
 * days; `ext` is an openssl extensions text (`subjectAltName=IP:127.0.0.1`, `extendedKeyUsage=clientAuth`).
 */
export async function signedCert(
  dir: string,
  ca: { key: string; cert: string },
  name: string,
  ext?: string,
): Promise<{ key: string; cert: string }> {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.cert`);
  await sh('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', join(dir, `${name}.csr`), '-subj', `/CN=${name}`]);
  const extFile = join(dir, `${name}.ext`);
  if (ext) await writeFile(extFile, `${ext}\n`);
  await sh('openssl', [
    'x509',
    '-req',
    '-in',
    join(dir, `${name}.csr`),
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-out',
    cert,
    '-days',
    '2',
    ...(ext ? ['-extfile', extFile] : []),
  ]);
  return { key, cert };
}
