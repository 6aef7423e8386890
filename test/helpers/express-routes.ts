import type { Express } from 'express';

export interface RegisteredRoute {
  /** Upper-case HTTP method, e.g. "GET". */
  method: string;
  /** The path as registered, with the mount prefixes of enclosing routers, e.g. "/v1/tenants/:tenant_id". */
  path: string;
}

/**
 * Express 5 (router 2.x) internals this walks: `app.router.stack` holds layers; a layer with a
 * `route` is an endpoint (`route.path`, `route.methods`), a layer whose `handle` has a `stack` is
 * a nested router mounted at `rawPath` (`slash` when mounted at "/"). Anything else is middleware.
 */
interface Layer {
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  rawPath?: unknown;
  slash?: boolean;
}

/** Every method + path the app answers, read from its router rather than from a hand-kept list. */
export function listExpressRoutes(app: Express): RegisteredRoute[] {
  const root = (app as unknown as { router?: { stack?: Layer[] } }).router?.stack;
  if (!root) throw new Error('not an Express 5 app: app.router.stack is missing');
  const routes: RegisteredRoute[] = [];
  walk(root, '', routes);
  return routes.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
}

function walk(stack: Layer[], prefix: string, out: RegisteredRoute[]): void {
  for (const layer of stack) {
    if (layer.route) {
      const { path, methods } = layer.route;
      if (typeof path !== 'string') throw new Error(`route with a non-string path (${String(path)}): list it by hand`);
      for (const [method, enabled] of Object.entries(methods)) {
        // `_all` is router.all(): it answers every method, which a matrix row per method cannot describe.
        if (method === '_all') throw new Error(`router.all('${prefix}${path}') found: give it explicit methods`);
        if (enabled) out.push({ method: method.toUpperCase(), path: `${prefix}${path}` });
      }
    } else if (layer.handle?.stack) {
      if (!layer.slash && typeof layer.rawPath !== 'string') throw new Error(`router mounted at a non-string path (${String(layer.rawPath)})`);
      walk(layer.handle.stack, layer.slash ? prefix : `${prefix}${layer.rawPath as string}`, out);
    }
  }
}
