// The package tests install slotctl on this host with dpkg and purge it afterwards. A purge deletes
// /var/lib/slotctl (a coordinator's database): it must never hit an install that is not the tests' own. So every
// test install is marked, and a test finding slotctl installed purges it only if the mark says a test made it
// (an earlier run killed before its clean-up); otherwise it refuses to run.
import { existsSync, lstatSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';

const MARK = '/var/lib/slotctl/.installed-by-slotctl-tests';

export async function installedVersion(): Promise<string | undefined> {
  // the package's state, whatever was asked of it (a refused removal leaves it installed, selected for removal)
  const r = await execa('dpkg-query', ['-W', '-f', '${db:Status-Status} ${Version}', 'slotctl'], { reject: false });
  return r.exitCode === 0 && r.stdout.startsWith('installed ') ? r.stdout.split(' ').at(-1) : undefined;
}

/** After each `dpkg -i` of a test. */
export function markTestInstall(): void {
  writeFileSync(MARK, 'installed by a slotctl test: a later test may purge it\n', { mode: 0o600 });
}

/** Before a test installs: purges a test's leftover install, refuses to touch anybody else's. */
export async function clearTestInstall(): Promise<void> {
  const version = await installedVersion();
  if (!version) return;
  if (!existsSync(MARK)) {
    throw new Error(`slotctl ${version} is installed on this host and not by a test: the package tests install and purge it (a purge deletes /var/lib/slotctl). Run them on a host without slotctl, or purge it yourself first (dpkg --purge slotctl)`);
  }
  const r = await execa('dpkg', ['--purge', 'slotctl'], { reject: false });
  if (r.exitCode !== 0) throw new Error(`could not purge a test's leftover slotctl install: ${r.stderr}`);
  removeTestKey();
}

/** The stand-in operator key package.test writes (purge keeps /etc/slotctl/tls while it holds an operator's files). */
export const TEST_OPERATOR_KEY = { path: '/etc/slotctl/tls/operator.key', content: 'not a real key' };

/** A killed package test's stand-in key, and the directories purge kept only for it; never anything else. */
function removeTestKey(): void {
  try {
    if (readFileSync(TEST_OPERATOR_KEY.path, 'utf8') !== TEST_OPERATOR_KEY.content) return;
  } catch {
    return;
  }
  rmSync(TEST_OPERATOR_KEY.path);
  for (const dir of ['/etc/slotctl/tls', '/etc/slotctl']) {
    try {
      rmdirSync(dir); // only if empty
    } catch {
      return;
    }
  }
}

/** After a test (or a killed one's clean-up): purges its own install, only if the mark is there; whether it did. */
export async function purgeTestInstall(): Promise<boolean> {
  if (!(await installedVersion()) || !existsSync(MARK)) return false;
  if ((await execa('dpkg', ['--purge', 'slotctl'], { reject: false })).exitCode !== 0) return false;
  removeTestKey();
  return true;
}

/** Whether anything (a dangling link included) is at `path`. */
export function lstatExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
