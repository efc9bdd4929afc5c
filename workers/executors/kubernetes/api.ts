/** API clients of the Kubernetes executor: kept-alive connections, and the status code of an error. */
import * as https from 'node:https';
import * as k8s from '@kubernetes/client-node';

/**
 * An API client like `kc.makeApiClient(type)` whose requests reuse `agent`'s kept-alive
 * connections. Authentication still runs per request (bearer tokens that rotate, exec plugins);
 * only the agent the library would make anew each time is replaced, and not behind a proxy
 * (the proxy agent is left as it is).
 */
export function keepAliveApi<T extends k8s.ApiType>(
  kc: k8s.KubeConfig,
  apiClientType: new (config: k8s.Configuration) => T,
  maxSockets = 64,
): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeConfig: no current cluster');
  let agent: https.Agent | undefined;
  const auth: k8s.SecurityAuthentication = {
    getName: () => 'ladder-keep-alive',
    async applySecurityAuthentication(context) {
      await kc.applySecurityAuthentication(context);
      const made = context.getAgent();
      if (cluster.proxyUrl || !(made instanceof https.Agent)) return;
      // The TLS material (CA, client certificate) is what kc put on its agent.
      agent ??= new https.Agent({ ...made.options, keepAlive: true, maxSockets });
      context.setAgent(agent);
    },
  };
  return new apiClientType(
    k8s.createConfiguration({ baseServer: new k8s.ServerConfiguration(cluster.server, {}), authMethods: { default: auth } }),
  );
}

/** HTTP status of a failed API call (404, 409…), whichever way the client reported it. */
export function apiCode(err: unknown): number | undefined {
  if (err instanceof k8s.ApiException) return err.code;
  const code = (err as { code?: unknown; statusCode?: unknown })?.code ?? (err as { statusCode?: unknown })?.statusCode;
  return typeof code === 'number' ? code : undefined;
}
