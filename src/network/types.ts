/** A network as docker describes one: the bridge driver's (or the built-in `host` and `none`). */
export interface NetworkRecord {
  Id: string;
  Name: string;
  Driver: 'bridge' | 'host' | 'null';
  /** RFC 3339. */
  Created: string;
  /** No route out: containers reach only each other. */
  Internal: boolean;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  /** bridge: the IPv4 subnet, the gateway on the bridge, the bridge's name. */
  Subnet?: string;
  Gateway?: string;
  Bridge?: string;
}

/** A published port: `hostPort` 0 until the start picks one. */
export interface PortBinding {
  hostIP: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** One container's attachment to one network, as its start made it. */
export interface Endpoint {
  NetworkID: string;
  EndpointID: string;
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  MacAddress: string;
  Aliases: string[];
  /** The interface inside the container (eth0, eth1, …). */
  IfName: string;
}

/** What a container asks of one network (docker's EndpointSettings, as given). */
export interface EndpointRequest {
  Aliases?: string[];
  /** A fixed address (`--ip`). */
  IPv4Address?: string;
}
