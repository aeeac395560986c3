import { hasCode, InvalidArgumentError } from '../../errdefs/index.js';
import {
  createNetwork,
  listNetworks,
  listVolumes,
  networkView,
  pruneNetworks,
  pruneVolumes,
  removeNetwork,
  removeVolume,
  volumeView,
} from '../../services/index.js';
import { boolValue, filterList, readJSON, sendEmpty, sendJSON } from './http.js';
import type { Route } from './router.js';
import { type EndpointConfig, endpointRequest } from './views.js';

// /networks and /volumes: thin over the services the CLI's network and volume verbs use.

interface NetworkCreateBody {
  Name?: string;
  Driver?: string;
  Internal?: boolean;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  IPAM?: { Config?: { Subnet?: string; Gateway?: string }[] | null } | null;
}

export const networkRoutes: Route[] = [
  {
    method: 'GET',
    pattern: '/networks',
    handle: async (e, { res, query }) => {
      sendJSON(
        res,
        200,
        listNetworks(e.berth, filterList(query)).map((n) => networkView(e.berth, n)),
      );
    },
  },
  {
    method: 'POST',
    pattern: '/networks/create',
    handle: async (e, { req, res }) => {
      const body = await readJSON<NetworkCreateBody>(req);
      if (!body.Name) throw new InvalidArgumentError('network name is required');
      const ipam = body.IPAM?.Config?.[0];
      const net = createNetwork(e.berth, body.Name, {
        ...(body.Driver ? { driver: body.Driver } : {}),
        ...(ipam?.Subnet ? { subnet: ipam.Subnet } : {}),
        ...(ipam?.Gateway ? { gateway: ipam.Gateway } : {}),
        internal: body.Internal ?? false,
        labels: body.Labels ?? {},
        options: body.Options ?? {},
      });
      e.events.emitEvent('network', 'create', net.Id, { name: net.Name, type: net.Driver });
      sendJSON(res, 201, { Id: net.Id, Warning: '' });
    },
  },
  {
    method: 'POST',
    pattern: '/networks/prune',
    handle: async (e, { res, query }) => {
      sendJSON(res, 200, { NetworksDeleted: await pruneNetworks(e.berth, filterList(query)) });
    },
  },
  {
    method: 'GET',
    pattern: '/networks/{id}',
    handle: async (e, { res, params }) => {
      sendJSON(res, 200, networkView(e.berth, e.berth.network.store.find(params.id as string)));
    },
  },
  {
    method: 'DELETE',
    pattern: '/networks/{id}',
    handle: async (e, { res, params }) => {
      const net = await removeNetwork(e.berth, params.id as string);
      e.events.emitEvent('network', 'destroy', net.Id, { name: net.Name, type: net.Driver });
      sendEmpty(res, 204);
    },
  },
  {
    method: 'POST',
    pattern: '/networks/{id}/connect',
    handle: async (e, { req, res, params }) => {
      const body = await readJSON<{ Container?: string; EndpointConfig?: EndpointConfig | null }>(req);
      if (!body.Container) throw new InvalidArgumentError('Container is required');
      const net = e.berth.network.store.find(params.id as string);
      const c = await e.containers.connect(body.Container, net, endpointRequest(body.EndpointConfig));
      e.events.emitEvent('network', 'connect', net.Id, { container: c.id, name: net.Name, type: net.Driver });
      sendEmpty(res, 200);
    },
  },
  {
    method: 'POST',
    pattern: '/networks/{id}/disconnect',
    handle: async (e, { req, res, params }) => {
      const body = await readJSON<{ Container?: string; Force?: boolean }>(req);
      if (!body.Container) throw new InvalidArgumentError('Container is required');
      const net = e.berth.network.store.find(params.id as string);
      const c = await e.containers.disconnect(body.Container, net);
      e.events.emitEvent('network', 'disconnect', net.Id, { container: c.id, name: net.Name, type: net.Driver });
      sendEmpty(res, 200);
    },
  },
  {
    method: 'GET',
    pattern: '/volumes',
    handle: async (e, { res, query }) => {
      sendJSON(res, 200, { Volumes: listVolumes(e.berth, filterList(query)).map((v) => volumeView(e.berth, v)), Warnings: null });
    },
  },
  {
    method: 'POST',
    pattern: '/volumes/create',
    handle: async (e, { req, res }) => {
      const body = await readJSON<{
        Name?: string;
        Driver?: string;
        DriverOpts?: Record<string, string> | null;
        Labels?: Record<string, string> | null;
      }>(req);
      const v = e.berth.volumes.create(body.Name || undefined, {
        ...(body.Driver ? { driver: body.Driver } : {}),
        labels: body.Labels ?? {},
        options: body.DriverOpts ?? {},
      });
      e.events.emitEvent('volume', 'create', v.Name, { driver: v.Driver });
      sendJSON(res, 201, volumeView(e.berth, v));
    },
  },
  {
    method: 'POST',
    pattern: '/volumes/prune',
    handle: async (e, { res, query }) => {
      const r = await pruneVolumes(e.berth, { filters: filterList(query) });
      sendJSON(res, 200, { VolumesDeleted: r.removed, SpaceReclaimed: r.reclaimed });
    },
  },
  {
    method: 'GET',
    pattern: '/volumes/{name}',
    handle: async (e, { res, params }) => {
      sendJSON(res, 200, volumeView(e.berth, e.berth.volumes.get(params.name as string)));
    },
  },
  {
    method: 'DELETE',
    pattern: '/volumes/{name}',
    handle: async (e, { res, params, query }) => {
      try {
        await removeVolume(e.berth, params.name as string);
      } catch (err) {
        // docker's force only forgives a missing volume
        if (!(boolValue(query, 'force') && hasCode(err, 'NOT_FOUND'))) throw err;
      }
      e.events.emitEvent('volume', 'destroy', params.name as string, { driver: 'local' });
      sendEmpty(res, 204);
    },
  },
];
