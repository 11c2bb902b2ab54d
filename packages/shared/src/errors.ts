// Named errors. A UserError is something the operator (or a peer sending bad input) can fix: its message says what
// is wrong and `hint` says what to do. Anything else that escapes is a bug and is reported as such.

export abstract class SlotctlError extends Error {
  abstract readonly code: string;
  readonly hint: string | undefined;
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options?.hint;
  }
}

export abstract class UserError extends SlotctlError {}

/** Input that does not satisfy the rules (a name, an address, a path, a cluster file). */
export class ValidationError extends UserError {
  readonly code = 'ValidationError';
}

/** A named thing (store, machine, slot, operation) that does not exist. */
export class NotFoundError extends UserError {
  readonly code = 'NotFound';
}

/** The request clashes with the current state (a running operation, a newer epoch). */
export class ConflictError extends UserError {
  readonly code = 'Conflict';
}

/** A configuration file or flag that cannot be used. */
export class ConfigError extends UserError {
  readonly code = 'ConfigError';
}

/** The caller's certificate does not allow this (another machine's, or a role below the one needed). */
export class PermissionError extends UserError {
  readonly code = 'PermissionDenied';
}

/** The coordinator cannot be reached. */
export class UnavailableError extends UserError {
  readonly code = 'Unavailable';
}

/** The database file is unreadable or not a slotctl database. */
export class CorruptDatabaseError extends UserError {
  readonly code = 'CorruptDatabase';
}

/** The database was written by a newer slotctl: refuse rather than damage it. */
export class NewerSchemaError extends UserError {
  readonly code = 'NewerSchema';
}

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}

export function describeError(err: unknown): string {
  if (err instanceof SlotctlError) return err.hint ? `${err.message}\n  hint: ${err.hint}` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Someone else already answers for an address this machine was told to take: a split-brain guard refused it. */
export class AddressConflictError extends SlotctlError {
  readonly code = 'AddressConflict';
}

/**
 * A slot path the agent (root) will not act on: a symlink or non-directory below a slot's directory (which Cyrus
 * owns, so Cyrus could have put it there), a parent Cyrus could replace, or a path outside the machine's disks.
 */
export class UnsafePathError extends UserError {
  readonly code = 'UnsafePath';
  constructor(readonly path: string, message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options);
  }
}

/** A file holding a secret that others may read, or whose content is not one line of plain characters. */
export class SecretFileError extends UserError {
  readonly code = 'SecretFile';
}

/** An agent whose version this coordinator does not speak with (more than one minor behind, or ahead of it). */
export class IncompatibleVersionError extends UserError {
  readonly code = 'IncompatibleVersion';
}
