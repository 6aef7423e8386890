import { z } from 'zod';
import { tokenIdSchema } from '../../auth/token.schemas';
import { tenantIdSchema } from '../../tenants/tenant.schemas';
import { vmIdSchema } from '../../vms/vm.schemas';

/** The schemas the routes check path parameters with; a value outside them names nothing (404). */
const PATH_PARAMETERS: Record<string, z.ZodType> = { tenant_id: tenantIdSchema, vm_id: vmIdSchema, token_id: tokenIdSchema };

export function pathParameterSchema(name: string): Record<string, unknown> {
  const schema = PATH_PARAMETERS[name];
  if (!schema) throw new Error(`path parameter ${name} has no schema in path-parameters.ts`);
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>;
  return rest;
}
