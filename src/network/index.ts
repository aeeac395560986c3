export { type CniConfList, type CniResult, cniAdd, cniDel, cniPath } from './cni.js';
export { type DnsOpts, type HostEntry, hostsFile, parseExtraHost, resolvConf } from './etc-files.js';
export { ensureNetworkRules, forgetNetworkRules, networkRulesMarked, networkRulesPresent } from './firewall.js';
export { createNetns, deleteNetns, listNetns, netnsAbandoned, netnsPath } from './netns.js';
export { assignHostPorts, mergePorts, type PortMap, parsePortKey, parsePublish, portBindings } from './ports.js';
export { type Attachment, ifName, NetworkService, networkingAvailable } from './service.js';
export { type CreateNetworkOpts, defaultBridge, isPredefined } from './store.js';
export { formatSubnet, parseSubnet } from './subnet.js';
export type { Endpoint, EndpointRequest, NetworkRecord, PortBinding } from './types.js';
