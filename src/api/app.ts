import express, { type Express, type Request } from 'express';
import type { Kysely } from 'kysely';
import type { ActiveTokenCache } from '../auth/active-token-cache';
import type { AuthFailureLimiter } from '../auth/auth-failure-limiter';
import type { Database } from '../db/tables';
import type { Logger } from '../logging/logger';
import type { ApiMetrics } from '../metrics/api-metrics';
import { accessLog } from './middleware/access-log';
import { httpMetrics } from './middleware/http-metrics';
import { authenticate } from './middleware/authenticate';
import type { RequestSignatureSettings } from './key-bound-request';
import { errorHandler, notFoundHandler } from './middleware/error-handler';
import { methodNotAllowed } from './middleware/method-not-allowed';
import { noStore } from './middleware/no-store';
import { requestContext } from './middleware/request-context';
import { requireJsonBody } from './middleware/require-json';
import { tenantRateLimit } from './middleware/rate-limit';
import { traceRequests } from './middleware/trace-requests';
import type { TenantRateLimiter } from '../ratelimit/tenant-rate-limiter';
import { auditRoutes, type CheckpointSeriesSource, type LatestCheckpointSource } from './routes/audit.routes';
import { checkpointKeyRoutes, type CheckpointPublicKeySource } from './routes/checkpoint-key.routes';
import { docsRoutes } from './routes/docs.routes';
import { healthRoutes, type DependencyCheck, type LedgerCheckpointReport } from './routes/health.routes';
import { tenantRoutes } from './routes/tenants.routes';
import { tokenRoutes } from './routes/tokens.routes';
import { vmRoutes } from './routes/vms.routes';
import { buildOpenApiDocument } from './openapi/openapi-document';
import type { TokenService } from '../auth/token.service';
import type { TenantService } from '../tenants/tenant.service';
import type { VmService } from '../vms/vm.service';

export const MAX_BODY_BYTES = 64 * 1024;

/** The services the routes call: built by buildApi, which owns their connections. */
export interface ApiServices {
  tenants: TenantService;
  tokens: TokenService;
  vms: VmService;
}

export interface AppDeps {
  services: ApiServices;
  /** Authentication's lookups (active tokens, seen request signatures) and the audit routes' reads. */
  db: Kysely<Database>;
  /** Tokens that authenticated a moment ago; the services clear it when tokens stop being usable. */
  tokenCache: ActiveTokenCache;
  log: Logger;
  readiness: Record<string, DependencyCheck>;
  trustedProxies: readonly string[];
  rateLimiter?: TenantRateLimiter;
  /** Failed authentications per client address; without it, failures are not limited. */
  authFailureLimiter?: AuthFailureLimiter;
  /** Requests of key-bound tokens (docs/bound-tokens.md); default: signatures up to 300 s old. */
  requestSignatures?: RequestSignatureSettings;
  metrics?: ApiMetrics;
  now?: () => Date;
  /** The public key of signed ledger checkpoints, published without authentication. */
  ledgerCheckpointKey?: CheckpointPublicKeySource;
  /** The newest signed checkpoint, for tenants' inclusion proofs. */
  latestLedgerCheckpoint?: LatestCheckpointSource;
  /** The checkpoint series by link hash: proofs against a saved checkpoint, and the series for tenants and witnesses. */
  ledgerCheckpointSeries?: CheckpointSeriesSource;
  /** The age of the newest signed checkpoint, reported by /readyz (never making it fail). */
  ledgerCheckpointReport?: () => Promise<LedgerCheckpointReport>;
}

/** The HTTP side of the API, without listening: buildApi wires it with its services and connections. */
export function createApp(deps: AppDeps): Express {
  const now = deps.now ?? (() => new Date());
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustedProxies.length > 0 ? [...deps.trustedProxies] : false);
  app.set('query parser', 'simple');

  app.use(traceRequests());
  app.use(requestContext());
  app.use(accessLog(deps.log));
  if (deps.metrics) app.use(httpMetrics(deps.metrics));
  app.use(healthRoutes(deps.readiness, deps.ledgerCheckpointReport));
  const openApi = buildOpenApiDocument('1');
  app.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });
  app.use(docsRoutes());
  app.use(checkpointKeyRoutes(deps.ledgerCheckpointKey));
  app.use(requireJsonBody());
  app.use(
    express.json({
      limit: MAX_BODY_BYTES,
      strict: true,
      type: 'application/json',
      // Key-bound requests sign a digest of the body as sent, not of what JSON.parse made of it.
      verify: (req, _res, raw) => {
        (req as Request).rawBody = raw;
      },
    }),
  );
  app.use('/v1', noStore());
  app.use('/v1', authenticate({ db: deps.db, now, failures: deps.authFailureLimiter, signatures: deps.requestSignatures, cache: deps.tokenCache }));
  if (deps.rateLimiter) app.use('/v1', tenantRateLimit(deps.rateLimiter));
  app.use(tenantRoutes(deps.services.tenants));
  app.use(tokenRoutes(deps.services.tokens));
  app.use(vmRoutes(deps.services.vms));
  app.use(auditRoutes({ db: deps.db, latestCheckpoint: deps.latestLedgerCheckpoint, checkpointSeries: deps.ledgerCheckpointSeries }));
  app.use(methodNotAllowed());
  app.use(notFoundHandler());
  app.use(errorHandler(deps.log));
  return app;
}
