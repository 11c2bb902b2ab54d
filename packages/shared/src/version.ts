// The version is this package's package.json "version", read once at load rather than written here: the .deb build
// (tools/package) stamps its --version into the staged package.json files, so a package built as 0.2.0 says 0.2.0 in
// --version and in the agent's hello without touching the sources.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** package.json is missing or has no version: a broken install or build, never something the operator typed. */
export class VersionUnknownError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VersionUnknownError';
  }
}

function ownVersion(): string {
  // dist/version.js and src/version.ts both sit one level below the package's package.json
  const file = fileURLToPath(new URL('../package.json', import.meta.url));
  let version: unknown;
  try {
    version = (JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version;
  } catch (err) {
    throw new VersionUnknownError(`cannot read slotctl's version from ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof version !== 'string' || version === '') throw new VersionUnknownError(`${file} has no "version"`);
  return version;
}

export const SLOTCTL_VERSION: string = ownVersion();
