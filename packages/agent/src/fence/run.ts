// The fence process: independent of the agent's event loop (a hung or stopped agent cannot keep a master alive).
// Every 100 ms it reads fence.json; when the listed masters' deadline has passed it kills each master's process
// group (SIGKILL: no further write is acknowledged) and releases its service IP, then records what it did in
// fenced.json. It acts again for a new deadline, or when a listed master runs again past its deadline.
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { writeFileAtomic, type Logger } from '@slotctl/shared/base';
import { monotonicMs } from '../lease/lease.js';
import { isSlotMaster, pidAlive, signalGroup } from '../slot/process.js';
import { IpVipDriver } from '../vip/ip.js';
import { bootId, fenceDue, fencePaths, readFenceFile, type FenceFile, type FencedRecord } from './fence-file.js';

const TICK_MS = 100;

function masterPid(pidFile: string, imapdConf: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 && pidAlive(pid) && isSlotMaster(pid, imapdConf) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function fence(file: FenceFile, now: number, log: Logger): Promise<FencedRecord> {
  const driver = file.vip.driver === 'ip' ? new IpVipDriver({ iface: file.vip.iface, probeMs: 0, log }) : undefined;
  const slots: FencedRecord['slots'] = [];
  for (const m of file.masters) {
    const pid = masterPid(m.pidFile, m.imapdConf);
    if (pid) signalGroup(pid, 'SIGKILL');
    let released = false;
    let error: string | undefined;
    try {
      if (driver && (await driver.isBound(m.serviceIp))) {
        await driver.unbind(m.serviceIp);
        released = true;
      }
    } catch (err) {
      error = (err as Error).message;
    }
    slots.push({ slot: m.slot, store: m.store, epoch: m.epoch, killed: pid, released, ...(error ? { error } : {}) });
  }
  return { bootId: file.bootId, at: now, deadline: file.deadline, wallTime: new Date().toISOString(), slots };
}

export async function runFence(stateDir: string, log: Logger): Promise<void> {
  const paths = fencePaths(stateDir);
  const boot = bootId();
  let fencedDeadline: number | undefined | null = null; // the deadline last enforced (null: none yet)
  let busy = false;
  let lastGood: FenceFile | undefined;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      // a state directory removed under it (a demo run again from scratch) leaves nothing to guard
      if (!existsSync(stateDir)) return stop();
      // a file that cannot be read (replaced, truncated by a full disk) does not end the guard: the deadline last
      // read still holds, so the masters it lists are killed at it unless a good file says otherwise
      const read = readFenceFile(paths.file, boot);
      if (read) lastGood = read;
      const file = read ?? lastGood;
      const now = monotonicMs();
      // its agent is gone and nothing it guards runs: the job is done (an agent that starts again starts its own fence)
      const running = () => file!.masters.some((m) => masterPid(m.pidFile, m.imapdConf) !== undefined);
      if (file && !pidAlive(file.agentPid) && !running()) return stop();
      if (!fenceDue(file, now)) return;
      // again only for a new deadline, or when a listed master is found running past it
      const again = fencedDeadline !== file!.deadline || running();
      if (!again) return;
      const record = await fence(file!, now, log);
      fencedDeadline = file!.deadline;
      // a master listed before it ever started (or already stopped by its agent) needs nothing: no record then
      if (!record.slots.some((x) => x.killed || x.released || x.error)) return;
      await writeFileAtomic(paths.fenced, `${JSON.stringify(record)}\n`, 0o600);
      const late = file!.deadline === undefined ? undefined : now - file!.deadline;
      log.warn({ holder: file!.holder, lateMs: late, slots: record.slots }, `FENCED: lease deadline passed; ${record.slots.length} master slot(s) killed and their service IPs released`);
    } catch (err) {
      log.error({ err: (err as Error).stack }, 'fence tick failed (a bug); trying again');
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), TICK_MS);
  const stop = () => {
    clearInterval(timer);
    try {
      if (existsSync(paths.pid) && readFileSync(paths.pid, 'utf8').trim() === String(process.pid)) unlinkSync(paths.pid);
    } catch {
      // already gone
    }
    log.info('fence stopped');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await writeFileAtomic(paths.pid, `${process.pid}\n`, 0o644);
  log.info({ stateDir, tickMs: TICK_MS }, 'fence running');
  await tick();
}
