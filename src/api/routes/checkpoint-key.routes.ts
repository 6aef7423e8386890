import type { KeyObject } from 'node:crypto';
import { Router } from 'express';
import { describePublicKey } from '../../ledger/checkpoint-key';
import { problems } from '../problem';

export const CHECKPOINT_KEY_PATH = '/.well-known/vm-tenant/ledger-checkpoint-key';

/** Where the API finds the public half of the worker's checkpoint key; null until the worker made one. */
export type CheckpointPublicKeySource = () => Promise<KeyObject | null>;

const RETRY_AFTER_SECONDS = 5;

/**
 * The public key that verifies signed ledger checkpoints, for anyone (no token): a tenant or an
 * auditor fetches it once, pins its key_id, and verifies checkpoints and proofs offline with it.
 */
export function checkpointKeyRoutes(source: CheckpointPublicKeySource | undefined): Router {
  const router = Router();
  router.get(CHECKPOINT_KEY_PATH, async (_req, res) => {
    const unavailable = (detail: string) => problems.dependencyUnavailable(detail, { retryAfterSeconds: RETRY_AFTER_SECONDS });
    const key = source
      ? await source().catch(() => {
          throw unavailable('The ledger checkpoint key cannot be read right now.');
        })
      : null;
    if (key === null) throw unavailable('The worker has not generated the ledger checkpoint key yet.');
    res.json(describePublicKey(key));
  });
  return router;
}
