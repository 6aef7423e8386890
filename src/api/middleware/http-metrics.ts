import type { RequestHandler } from 'express';
import type { ApiMetrics } from '../../metrics/api-metrics';

/** Counts and times every request by its route pattern (never the raw path, which holds ids). */
export function httpMetrics(metrics: ApiMetrics): RequestHandler {
  return (req, res, next) => {
    const end = metrics.httpDuration.startTimer();
    res.on('finish', () => {
      const labels = { method: req.method, route: req.route?.path ?? 'unmatched', status: String(res.statusCode) };
      end(labels);
      metrics.httpRequests.inc(labels);
      const code: unknown = res.locals.problemCode;
      if (typeof code === 'string') metrics.problems.inc({ code });
      const dependency: unknown = res.locals.problemDependency;
      if (code === 'dependency_unavailable' && typeof dependency === 'string') metrics.dependencyUnavailable.inc({ dependency });
      if (req.method === 'POST' && labels.route === '/v1/vms') {
        const outcome = res.statusCode === 202 ? 'accepted' : ((res.locals.problemCode as string | undefined) ?? String(res.statusCode));
        metrics.admissions.inc({ outcome });
      }
    });
    next();
  };
}
