import { serveApi } from './api-server';

/** GET /openapi.json from the API as buildApi wires it, on a random port: only that public route is called. */
export async function fetchServedOpenApiDocument(): Promise<unknown> {
  const served = await serveApi();
  try {
    const response = await fetch(`${served.url}/openapi.json`, { signal: AbortSignal.timeout(10_000) });
    if (response.status !== 200) throw new Error(`GET /openapi.json answered ${response.status}`);
    return await response.json();
  } finally {
    await served.close();
  }
}
