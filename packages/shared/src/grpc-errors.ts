// Carries named errors across gRPC: the server turns a SlotctlError into a status with its code and hint in
// metadata; the client turns the status back into the same class, so the CLI can tell user errors from bugs.
import * as grpc from '@grpc/grpc-js';
import {
  ConflictError,
  CorruptDatabaseError,
  NewerSchemaError,
  NotFoundError,
  SlotctlError,
  UnavailableError,
  UserError,
  ValidationError,
  ConfigError,
  PermissionError,
  IncompatibleVersionError,
} from './errors.js';

const CODE_KEY = 'slotctl-error-code';
const HINT_KEY = 'slotctl-hint';

type UserErrorClass = new (message: string, options?: { hint?: string }) => UserError;

const BY_CODE: Record<string, { cls: UserErrorClass; status: grpc.status }> = {
  ValidationError: { cls: ValidationError, status: grpc.status.INVALID_ARGUMENT },
  ConfigError: { cls: ConfigError, status: grpc.status.INVALID_ARGUMENT },
  NotFound: { cls: NotFoundError, status: grpc.status.NOT_FOUND },
  Conflict: { cls: ConflictError, status: grpc.status.FAILED_PRECONDITION },
  CorruptDatabase: { cls: CorruptDatabaseError, status: grpc.status.INTERNAL },
  NewerSchema: { cls: NewerSchemaError, status: grpc.status.INTERNAL },
  Unavailable: { cls: UnavailableError, status: grpc.status.UNAVAILABLE },
  PermissionDenied: { cls: PermissionError, status: grpc.status.PERMISSION_DENIED },
  IncompatibleVersion: { cls: IncompatibleVersionError, status: grpc.status.FAILED_PRECONDITION },
};

export function toGrpcError(err: unknown): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (err instanceof SlotctlError) {
    metadata.set(CODE_KEY, err.code);
    if (err.hint) metadata.set(HINT_KEY, err.hint);
    return { code: BY_CODE[err.code]?.status ?? grpc.status.UNKNOWN, details: err.message, metadata };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: grpc.status.INTERNAL, details: `internal error (a bug): ${message}`, metadata };
}

/** The slotctl error a status carries (a coordinator's own answer, not a transport failure); undefined: none. */
export function namedErrorCode(err: grpc.ServiceError): string | undefined {
  return err.metadata?.get(CODE_KEY)[0]?.toString();
}

function isServiceError(err: unknown): err is grpc.ServiceError {
  return typeof err === 'object' && err !== null && 'code' in err && 'metadata' in err;
}

/** Turns a failed call into a named error; `target` is the address the client tried. */
export function fromGrpcError(err: unknown, target: string): Error {
  if (!isServiceError(err)) return err instanceof Error ? err : new Error(String(err));
  const code = err.metadata?.get(CODE_KEY)[0]?.toString();
  const hint = err.metadata?.get(HINT_KEY)[0]?.toString();
  const known = code ? BY_CODE[code] : undefined;
  if (known) return new known.cls(err.details, hint ? { hint } : undefined);
  if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
    return new UnavailableError(`cannot reach the coordinator at ${target} (${err.details})`, {
      hint: 'is slot-coordinator running there? Set the address with --coordinator or SLOTCTL_COORDINATOR',
    });
  }
  return new Error(`coordinator at ${target} answered ${grpc.status[err.code] ?? err.code}: ${err.details}`);
}
