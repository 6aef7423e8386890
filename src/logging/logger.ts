import pino, { type DestinationStream, type Logger } from 'pino';
import { logTraceFields } from '../telemetry/spans';

export type { Logger };

/**
 * Structured JSON logs. Secrets never reach a log line because we never log headers or bodies;
 * the redaction list is a second line of defence for anything that slips into a log object.
 */
export function createLogger(options: { level: string; name: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      name: options.name,
      level: options.level,
      base: { service: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      // trace_id and span_id on every line logged inside a span (docs/tracing.md).
      mixin: logTraceFields,
      redact: {
        paths: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', 'adminToken', '*.adminToken'],
        censor: '[redacted]',
      },
    },
    options.destination,
  );
}
