// Rules for every name, address and path that reaches a file system or a command line. The coordinator checks
// them when a cluster file is applied; the agent checks them again when they arrive over gRPC. Plain functions
// (no schema library), so that the agent does not pay for one in memory.
import { isIP } from 'node:net';
import { posix } from 'node:path';
import { ValidationError } from './errors.js';

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const PATH_CHARS_RE = /^[A-Za-z0-9._/+-]+$/;

export function nameProblem(value: string): string | undefined {
  if (!NAME_RE.test(value)) {
    return `"${value}" is not a valid name: use 1-63 lower-case letters, digits and "-", starting with a letter or digit`;
  }
  return undefined;
}

export function ipProblem(value: string): string | undefined {
  return isIP(value) === 0 ? `"${value}" is not an IPv4 or IPv6 address` : undefined;
}

export function pathProblem(value: string): string | undefined {
  if (!value.startsWith('/')) return `path "${value}" must be absolute`;
  if (value.length > 1024) return `path "${value.slice(0, 40)}…" is longer than 1024 characters`;
  if (!PATH_CHARS_RE.test(value)) return `path "${value}" may only contain letters, digits and . _ / + -`;
  if (value.split('/').includes('..')) return `path "${value}" must not contain ".."`;
  if (posix.normalize(value) !== value || (value.length > 1 && value.endsWith('/'))) {
    return `path "${value}" is not in normal form (no "//", "/./" or trailing "/")`;
  }
  if (value === '/') return 'path "/" cannot be a partition';
  return undefined;
}

/**
 * A Cyrus internal mailbox name (`user.bob^smith.Sent`, or `user:bob`) that may become one argument of a Cyrus tool:
 * not an option (`-…`), no control characters, and no IMAP wildcard — mbexamine takes its arguments as patterns, so
 * `*` would examine (and print) every mailbox of the slot.
 */
export function mailboxProblem(value: string): string | undefined {
  if (value.length === 0) return 'a mailbox name is empty';
  if (value.length > 1000) return `mailbox name "${value.slice(0, 40)}…" is longer than 1000 characters`;
  if (value.startsWith('-')) return `mailbox name "${value.slice(0, 80)}" starts with "-" (it would be read as an option)`;
  if (/[\u0000-\u001f\u007f]/.test(value)) return `mailbox name ${JSON.stringify(value.slice(0, 80))} contains a control character`;
  if (/[*%]/.test(value)) return `mailbox name "${value.slice(0, 80)}" contains "*" or "%" (a pattern, not one mailbox)`;
  return undefined;
}

/** Throws a ValidationError naming `what` unless `value` is a valid name. */
export function assertName(value: string, what: string): string {
  const problem = nameProblem(value);
  if (problem) throw new ValidationError(`${what}: ${problem}`);
  return value;
}

export function assertIp(value: string, what: string): string {
  const problem = ipProblem(value);
  if (problem) throw new ValidationError(`${what}: ${problem}`);
  return value;
}

export function assertMailbox(value: string, what: string): string {
  const problem = mailboxProblem(value);
  if (problem) throw new ValidationError(`${what}: ${problem}`);
  return value;
}

export function assertPath(value: string, what: string): string {
  const problem = pathProblem(value);
  if (problem) throw new ValidationError(`${what}: ${problem}`);
  return value;
}
