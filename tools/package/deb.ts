// The Debian side of the package: files from deploy/ placed where Debian wants them, the DEBIAN/ control area
// (control, conffiles, md5sums, maintainer scripts from deploy/debian/) and the dpkg-deb call.
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { StageError } from './stage.js';

export const PACKAGE = 'slotctl';
const MAINTAINER = 'slotctl maintainers <slotctl@localhost>';
/** Where the Node.js code lives on the installed system. */
export const LIB_DIR = 'usr/lib/slotctl';
/** Debian bookworm's unit directory (merged /usr makes it /usr/lib/systemd/system as well). */
const UNIT_DIR = 'lib/systemd/system';
const MAINTAINER_SCRIPTS = ['postinst', 'prerm', 'postrm'];

export interface DebianInputs {
  root: string;
  stageDir: string;
  version: string;
  arch: string;
  /** bin name → path relative to LIB_DIR */
  bins: Map<string, string>;
  bundled: Map<string, string>;
}

/**
 * The Node.js dependency: better-sqlite3 ships a native module compiled by this build for the running Node's ABI
 * (NODE_MODULE_VERSION, one value for a whole major release), so the package must not be installed beside another
 * major Node: "<< next major" is that. The lower bound is the workspace's engines (>= 20.5) within Node 20.
 */
export function nodejsDepends(nodeVersion = process.versions.node): string {
  const major = Number(nodeVersion.split('.')[0]);
  return `nodejs (>= ${major === 20 ? '20.5' : `${major}`}), nodejs (<< ${major + 1})`;
}

function copyInto(src: string, dest: string, mode = 0o644): void {
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(src, dest);
  chmodSync(dest, mode);
}

const filesIn = (dir: string, match: (f: string) => boolean = () => true): string[] =>
  existsSync(dir) ? readdirSync(dir).filter((f) => match(f) && statSync(join(dir, f)).isFile()).sort() : [];

/** Places everything but the Node.js tree (stage.ts did that); returns the conffiles (absolute paths). */
export function placeFiles(inputs: DebianInputs, commit: string | undefined): string[] {
  const { root, stageDir: s } = inputs;
  for (const [bin, path] of inputs.bins) {
    // relative links (Debian policy within one top-level directory); Node resolves the real path of a main module,
    // so the bin script's own `../dist/…` imports work through the link
    const at = join(s, 'usr/bin', bin);
    mkdirSync(dirname(at), { recursive: true });
    symlinkSync(relative(dirname(at), join(s, LIB_DIR, path)), at);
  }
  for (const f of filesIn(join(root, 'deploy/systemd'), (f) => /\.(service|socket|timer)$/.test(f))) copyInto(join(root, 'deploy/systemd', f), join(s, UNIT_DIR, f));
  // the daemons' example configs are the operator's to edit: conffiles, kept on upgrade, asked about when both changed
  const conffiles = filesIn(join(root, 'deploy/config')).map((f) => {
    copyInto(join(root, 'deploy/config', f), join(s, 'etc/slotctl', f));
    return `/etc/slotctl/${f}`;
  });
  for (const sub of ['rsyslog', 'prometheus']) {
    for (const f of filesIn(join(root, 'deploy', sub))) copyInto(join(root, 'deploy', sub, f), join(s, 'usr/share/slotctl', sub, f));
  }
  copyInto(join(root, 'deploy/cluster.example.yaml'), join(s, 'usr/share/slotctl/cluster.example.yaml'));

  const doc = join(s, 'usr/share/doc', PACKAGE);
  mkdirSync(doc, { recursive: true });
  const bundled = [...inputs.bundled].sort(([a], [b]) => a.localeCompare(b)).map(([p, l]) => ` ${p}: ${l}`);
  writeFileSync(
    join(doc, 'copyright'),
    [
      'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
      'Upstream-Name: slotctl',
      'Comment: slotctl itself declares no licence yet. The Node.js modules bundled under',
      ` /${LIB_DIR}/node_modules/.pnpm carry their own licence files; their declared licences:`,
      ...bundled,
      '',
      'Files: *',
      'Copyright: the slotctl authors',
      'License: undeclared',
      '',
    ].join('\n'),
  );
  const date = new Date().toUTCString().replace('GMT', '+0000');
  const changelog = `${PACKAGE} (${inputs.version}) unstable; urgency=medium\n\n  * Built by tools/package${commit ? ` from commit ${commit}` : ''}.\n\n -- ${MAINTAINER}  ${date}\n`;
  // gzip -9n: no name or time in the header
  writeFileSync(join(doc, 'changelog.Debian.gz'), gzipSync(changelog, { level: 9 }));
  return conffiles;
}

/** Modes as a package wants them (0755 directories and executables, 0644 the rest); returns the installed size in
 * KiB the way dpkg-gencontrol counts it and the md5sums of regular files that are not conffiles. */
function normalise(stageDir: string, conffiles: Set<string>): { installedKiB: number; md5sums: string[] } {
  let installedKiB = 0;
  const md5sums: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir).sort()) {
      const path = join(dir, e);
      const st = lstatSync(path);
      if (st.isSymbolicLink()) {
        installedKiB += 1;
      } else if (st.isDirectory()) {
        chmodSync(path, 0o755);
        installedKiB += 1;
        walk(path);
      } else {
        chmodSync(path, st.mode & 0o111 ? 0o755 : 0o644);
        installedKiB += Math.ceil(st.size / 1024);
        const rel = relative(stageDir, path);
        if (!conffiles.has(`/${rel}`)) md5sums.push(`${createHash('md5').update(readFileSync(path)).digest('hex')}  ${rel}`);
      }
    }
  };
  for (const top of readdirSync(stageDir).filter((d) => d !== 'DEBIAN')) {
    const path = join(stageDir, top);
    chmodSync(path, 0o755);
    walk(path);
  }
  return { installedKiB, md5sums };
}

export function writeControlArea(inputs: DebianInputs, conffiles: string[]): void {
  const { stageDir, root } = inputs;
  const { installedKiB, md5sums } = normalise(stageDir, new Set(conffiles));
  const debian = join(stageDir, 'DEBIAN');
  mkdirSync(debian, { recursive: true, mode: 0o755 });
  const control = [
    `Package: ${PACKAGE}`,
    `Version: ${inputs.version}`,
    `Architecture: ${inputs.arch}`,
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${installedKiB}`,
    // adduser: postinst creates the slotctl system user with it
    `Depends: adduser, ${nodejsDepends()}, cyrus-imapd, cyrus-replication, iputils-arping, iproute2`,
    'Section: mail',
    'Priority: optional',
    'Description: high-availability manager for Cyrus IMAP slot clusters',
    ' slotctl runs Cyrus IMAP as slots (one Cyrus instance each) paired into replicated',
    ' stores across mail hosts, and automates what upstream Cyrus leaves to hand:',
    ' switchover, machine drain, disaster failover with fencing, and recovery.',
    ' .',
    ' This package holds the agent (slot-agent, slot-fence, slot-syslogd), the',
    ' coordinator (slot-coordinator) and the operator CLI (slotctl), with systemd',
    ' units that are installed but neither enabled nor started.',
    '',
  ].join('\n');
  writeFileSync(join(debian, 'control'), control, { mode: 0o644 });
  if (conffiles.length > 0) writeFileSync(join(debian, 'conffiles'), `${conffiles.join('\n')}\n`, { mode: 0o644 });
  writeFileSync(join(debian, 'md5sums'), `${md5sums.join('\n')}\n`, { mode: 0o644 });
  for (const script of MAINTAINER_SCRIPTS) {
    const src = join(root, 'deploy/debian', script);
    if (!existsSync(src)) throw new StageError(`maintainer script ${src} is missing`);
    copyInto(src, join(debian, script), 0o755);
  }
}

/** dpkg-deb --build with every file owned by root (no fakeroot needed); xz, dpkg's default. */
export async function buildDeb(stageDir: string, outFile: string): Promise<void> {
  const r = await execa('dpkg-deb', ['--build', '--root-owner-group', stageDir, outFile], { reject: false });
  if (r.exitCode !== 0) throw new StageError(`dpkg-deb --build failed (exit ${r.exitCode}): ${r.stderr || r.stdout}`);
}
