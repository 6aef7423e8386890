import type { ErrorRequestHandler, RequestHandler } from 'express';
import { isDatabaseUnavailableError } from '../../db/database';
import type { Logger } from '../../logging/logger';
import { problemOf } from '../domain-problems';
import { ApiError, problems } from '../problem';
import '../request-types';
import { TemporalUnavailableError } from '../../temporal/temporal-unavailable';

interface BodyParserError {
  type?: string;
  status?: number;
}

/** Maps body-parser's own errors to problems, so bad input is never a 500. */
function fromBodyParser(error: BodyParserError): ApiError | null {
  switch (error.type) {
    case 'entity.parse.failed':
      return problems.malformedJson();
    case 'entity.too.large':
      return problems.payloadTooLarge();
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return problems.unsupportedMediaType('Send the body as UTF-8 JSON.');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return problems.invalid('The request body could not be read.');
    default:
      return fromClientFault(error);
  }
}

/**
 * Any other error Express's own plumbing raises for a client fault carries a 4xx `status`
 * (http-errors style): a malformed percent-escape in a path parameter (the router's URIError), a
 * body whose content-encoding does not decompress. They are bad requests, not 500s; their messages
 * echo input, so the detail stays generic.
 */
function fromClientFault(error: BodyParserError): ApiError | null {
  const status = error.status;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 499) return null;
  return problems.invalid('The request could not be read.', [], status);
}

export function sendProblem(res: Parameters<RequestHandler>[1], req: Parameters<RequestHandler>[0], error: ApiError): void {
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  res.locals.problemCode = error.code;
  // Which dependency a dependency_unavailable names, for vm_tenant_dependency_unavailable_total (http-metrics.ts).
  if (typeof error.extensions.dependency === 'string') res.locals.problemDependency = error.extensions.dependency;
  res
    .status(error.status)
    .type('application/problem+json')
    .json({
      type: `urn:vm-tenant:problem:${error.code}`,
      title: error.title,
      status: error.status,
      ...(error.detail ? { detail: error.detail } : {}),
      code: error.code,
      ...error.extensions,
      instance: req.originalUrl.split('?')[0],
      request_id: req.context?.request_id,
    });
}

export function notFoundHandler(): RequestHandler {
  return (req, res) => sendProblem(res, req, problems.routeNotFound());
}

/** Seconds a client is told to wait before retrying while a dependency is unreachable or hung. */
const DEPENDENCY_RETRY_AFTER_SECONDS = 5;

function dependencyUnavailable(dependency: 'postgres' | 'temporal', detail: string): ApiError {
  return problems.dependencyUnavailable(detail, { retryAfterSeconds: DEPENDENCY_RETRY_AFTER_SECONDS, extensions: { dependency } });
}

/**
 * A dependency that is down, restarting, hung or refusing for load is a 503 the client may retry
 * (with its Idempotency-Key), never a 500, and never a hang: every call to one has a deadline
 * (Postgres: statement, read and acquire timeouts; Temporal: TEMPORAL_CALL_TIMEOUT_MS).
 *
 * A Temporal write may have been admitted before its deadline passed (the update accepted, its
 * answer lost): the detail says so, and that a retry with the same Idempotency-Key names the same
 * VM and converges on one outcome.
 */
function fromDependencyFailure(error: unknown): ApiError | null {
  if (isDatabaseUnavailableError(error)) {
    return dependencyUnavailable('postgres', 'The database is unreachable or did not answer in time; retry later (with the same Idempotency-Key for writes).');
  }
  if (error instanceof TemporalUnavailableError) {
    return dependencyUnavailable(
      'temporal',
      'Temporal (the per-tenant workflows) is unreachable or did not answer in time. The request may have been admitted: ' +
        'retry with the same Idempotency-Key, which converges on one outcome (the same VM, never a second one).',
    );
  }
  return null;
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    let problem = error instanceof ApiError ? error : (problemOf(error) ?? fromBodyParser(error as BodyParserError) ?? fromDependencyFailure(error));
    if (problem?.code === 'dependency_unavailable') {
      log.warn({ err: error, request_id: req.context?.request_id, route: req.route?.path }, 'dependency unavailable');
    }
    if (!problem) {
      log.error({ err: error, request_id: req.context?.request_id, route: req.route?.path }, 'unhandled error');
      problem = problems.internalError();
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    sendProblem(res, req, problem);
  };
}
