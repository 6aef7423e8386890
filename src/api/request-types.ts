import type { Caller } from '../auth/caller';
import type { RequestContext } from '../shared/request-context';

declare module 'express-serve-static-core' {
  interface Request {
    /** Request id, client address and user agent; the actor fields are filled in by authentication. */
    context: RequestContext;
    caller?: Caller;
    /** The JSON body as received, for the Content-Digest of key-bound requests; unset without a body. */
    rawBody?: Buffer;
  }
}

export {};
