import { Router } from 'express';
import { z } from 'zod';
import { FLEET_VM_STATUSES, FleetSpawnRequestSchema } from '../fleet/fleet-types';
import type { FleetState } from './fleet-state';
import { sendProblem } from './problem';

const ListQuerySchema = z.strictObject({
  tenant_id: z.string().min(1).optional(),
  status: z.enum(FLEET_VM_STATUSES).optional(),
});

/**
 * vm_tombstoned is 409, not 410: the POST's target is the collection, which is not gone; what
 * conflicts is the request with the state of one id (as for request_id_conflict).
 */
const REJECTION_STATUS = { no_capacity: 409, image_refused: 422, request_id_conflict: 409, vm_tombstoned: 409 } as const;

/** The fleet controller API: /v1/vms. */
export function vmsRoutes(state: FleetState): Router {
  const router = Router();

  router.post('/', (req, res) => {
    const parsed = FleetSpawnRequestSchema.safeParse(req.body);
    if (!parsed.success) return sendProblem(res, 400, 'invalid_request', z.prettifyError(parsed.error));
    const result = state.spawn(parsed.data);
    if (result.outcome === 'rejected') return sendProblem(res, REJECTION_STATUS[result.code], result.code, result.detail);
    res.status(result.outcome === 'created' ? 201 : 200).json(result.vm);
  });

  router.get('/', (req, res) => {
    const parsed = ListQuerySchema.safeParse(req.query);
    if (!parsed.success) return sendProblem(res, 400, 'invalid_request', z.prettifyError(parsed.error));
    res.json({ items: state.list(parsed.data) });
  });

  router.get('/:vm_id', (req, res) => {
    const vm = state.get(req.params.vm_id);
    if (!vm) return sendProblem(res, 404, 'vm_not_found', `no VM ${req.params.vm_id}`);
    res.json(vm);
  });

  router.delete('/:vm_id', (req, res) => {
    const vm = state.destroy(req.params.vm_id);
    // Still 404 (clients read it as "never saw it"), but the id is now tombstoned.
    if (!vm) return sendProblem(res, 404, 'vm_not_found', `no VM ${req.params.vm_id}; its id is tombstoned, so a later create of it is refused`);
    res.json(vm);
  });

  return router;
}
