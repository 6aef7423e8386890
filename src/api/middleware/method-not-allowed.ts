import type { RequestHandler } from 'express';
import { ROUTE_DOCS } from '../openapi/route-docs';
import { problems } from '../problem';

interface PathMethods {
  pattern: RegExp;
  methods: string[];
}

/** The methods of each documented path (the route table and the document agree: openapi.test.ts). */
function pathMethods(): PathMethods[] {
  const byPath = new Map<string, string[]>();
  for (const doc of ROUTE_DOCS) byPath.set(doc.path, [...(byPath.get(doc.path) ?? []), doc.method]);
  return [...byPath].map(([path, methods]) => ({
    pattern: new RegExp(`^${path.replace(/[.]/g, '\\.').replace(/:\w+/g, '[^/]+')}/?$`),
    // Express answers HEAD with the GET handler.
    methods: methods.includes('GET') ? [...methods, 'HEAD'] : methods,
  }));
}

/**
 * A request no route took, on a path that exists with other methods: 405 with the Allow header
 * (RFC 9110 §15.5.6), instead of the 404 of an unknown path. Mounted after every route.
 */
export function methodNotAllowed(): RequestHandler {
  const paths = pathMethods();
  return (req, _res, next) => {
    const known = paths.find(({ pattern }) => pattern.test(req.path));
    if (!known || known.methods.includes(req.method)) return next();
    const allow = known.methods.join(', ');
    throw problems.methodNotAllowed(req.method, allow);
  };
}
