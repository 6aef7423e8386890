import type { ServiceError } from '@grpc/grpc-js';
import { google, temporal } from '@temporalio/proto';

const { MultiOperationExecutionFailure } = temporal.api.errordetails.v1;

function typeName(detail: google.protobuf.IAny): string {
  return detail.type_url?.replace(/^type\.googleapis\.com\//, '') ?? '';
}

/**
 * The message types of the details a gRPC error carries (`grpc-status-details-bin`), including
 * those of each operation of an update-with-start, whose errors arrive as one
 * MultiOperationExecutionFailure.
 */
export function grpcDetailTypes(error: ServiceError): string[] {
  const encoded = error.metadata?.get('grpc-status-details-bin')[0];
  if (!(encoded instanceof Uint8Array)) return [];
  return google.rpc.Status.decode(encoded).details.flatMap((detail) =>
    typeName(detail) === 'temporal.api.errordetails.v1.MultiOperationExecutionFailure' && detail.value
      ? MultiOperationExecutionFailure.decode(detail.value).statuses.flatMap((operation) => (operation.details ?? []).map(typeName))
      : [typeName(detail)],
  );
}
