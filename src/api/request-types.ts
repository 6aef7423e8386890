import type { Caller } from '../auth/caller';
import type { RequestContext } from '../shared/request-context';

declare module 'express-serve-static-core' {
  interface Request {
    /** Request id, client address and user agent; the actor fields are filled in by authentication. */
    context: RequestContext;
    caller?: Caller;
  }
}

export {};
