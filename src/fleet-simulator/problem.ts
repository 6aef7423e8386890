import { STATUS_CODES } from 'node:http';
import type { Response } from 'express';

/** Error codes the simulator answers with; see docs/fleet-api.md. */
export type SimulatorProblemCode =
  'invalid_request' | 'no_capacity' | 'image_refused' | 'request_id_conflict' | 'vm_tombstoned' | 'vm_not_found' | 'not_found' | 'fault_injected' | 'internal';

/** Answers an RFC 9457 problem document with a stable `code`. */
export function sendProblem(res: Response, status: number, code: SimulatorProblemCode, detail?: string): void {
  res
    .status(status)
    .type('application/problem+json')
    .json({ type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, code, ...(detail ? { detail } : {}) });
}
