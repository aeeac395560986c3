export { type Challenge, parseWWWAuthenticate, repositoryScope, type Token } from './auth.js';
export { isRetryable, type RequestOpts, type Response, readCapped, Session, type SessionOpts } from './client.js';
export { authConfigCredentials, authKey, CredentialStore, type Credentials, dockerConfigPath } from './credentials.js';
export { type Capability, defaultHostsDirs, type HostsOpts, isLoopback, type RegistryHost, registryHosts } from './hosts.js';
export { defaultChunkSize, manifestAccept, Repository } from './repository.js';
