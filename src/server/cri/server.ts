import { chmodSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { grpcStatuses, NotImplementedError } from '../../errdefs/index.js';
import { packageRoot } from '../../sys/index.js';
import type { CriContext, Handler } from './context.js';
import { imageService } from './image-service.js';
import { runtimeService } from './runtime-service.js';

/** The proto berth serves: runtime.v1, kept beside this front end. */
export const criProto = join(packageRoot, 'src', 'server', 'cri', 'api.proto');

/** A handler's rejection as a gRPC status: the code from the error's kind, the message as details. */
function toStatus(err: unknown): grpc.ServiceError {
  const code = (err as { code?: keyof typeof grpcStatuses }).code;
  const status = (code && grpcStatuses[code]) ?? 2;
  const e = new Error((err as Error).message ?? String(err)) as grpc.ServiceError;
  e.code = status;
  e.details = e.message;
  return e;
}

/** A CRI server over `ctx`, listening on the unix socket `path` (made 0660, owned by root). */
export async function startCriServer(ctx: CriContext, path: string): Promise<{ close(): Promise<void> }> {
  // loaded here: the CLI's other commands do not pay for gRPC
  const grpcJs = await import('@grpc/grpc-js');
  const loader = await import('@grpc/proto-loader');
  const def = loader.loadSync(criProto, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  const pkg = grpcJs.loadPackageDefinition(def) as unknown as {
    runtime: { v1: { RuntimeService: { service: grpc.ServiceDefinition }; ImageService: { service: grpc.ServiceDefinition } } };
  };
  const server = new grpcJs.Server({
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    'grpc.max_send_message_length': 40 * 1024 * 1024,
  });
  const wrap = (
    service: grpc.ServiceDefinition,
    handlers: Record<string, Handler | ((call: grpc.ServerWritableStream<unknown, unknown>) => void)>,
  ) => {
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(service)) {
      const h = handlers[name];
      if (method.responseStream) {
        impl[name] =
          (h as grpc.handleServerStreamingCall<unknown, unknown> | undefined) ??
          ((call: grpc.ServerWritableStream<unknown, unknown>) =>
            call.destroy(toStatus(new NotImplementedError(`${name} is not implemented`))));
        continue;
      }
      impl[name] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (!h) {
          cb(toStatus(new NotImplementedError(`${name} is not implemented by berth`)));
          return;
        }
        (h as Handler)(call.request as never).then(
          (r) => cb(null, r),
          (err) => cb(toStatus(err)),
        );
      };
    }
    server.addService(service, impl);
  };
  wrap(pkg.runtime.v1.RuntimeService.service, runtimeService(ctx));
  wrap(pkg.runtime.v1.ImageService.service, imageService(ctx));
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  rmSync(path, { force: true });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${path}`, grpcJs.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  chmodSync(path, 0o660);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          rmSync(path, { force: true });
          resolve();
        });
        setTimeout(() => server.forceShutdown(), 2000).unref();
      }),
  };
}
