// A coordinator among several (etcd backend): follow while another leads, lead when elected, follow again when the
// leadership is lost — the process never exits for it. Each leadership is a fresh Coordinator over a fresh read of
// etcd: nothing of a lost term's memory is trusted in the next.
import type { Etcd3 } from 'etcd3';
import type { Logger } from '@slotctl/shared';
import { Coordinator, type CoordinatorConfig } from '../coordinator.js';
import { etcdBackend } from '../db/etcd/index.js';
import { EtcdKeys } from '../db/etcd/keys.js';
import type { CoordinatorServer } from '../grpc/server.js';
import { AGENT_RECONNECT_TO_NEW_LEADER_MS } from '../liveness/rules.js';
import { Leadership, type LeaderRecord } from './leadership.js';

export interface HaOptions {
  client: Etcd3;
  prefix: string;
  server: CoordinatorServer;
  config: CoordinatorConfig;
  /** This coordinator as the others and the agents know it. */
  me: Omit<LeaderRecord, 'since'>;
  ttlSeconds: number;
  log: Logger;
}

export class HaCoordinator {
  private stopping = false;
  private leadership: Leadership | undefined;
  private coordinator: Coordinator | undefined;
  private wake: (() => void) | undefined;
  private done: Promise<void> | undefined;
  /** Terms led so far (tests and status). */
  readonly terms: number[] = [];

  constructor(private readonly o: HaOptions) {}

  start(): void {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    const keys = new EtcdKeys(this.o.prefix);
    let lastLeader: string | undefined;
    while (!this.stopping) {
      const leadership = new Leadership({ client: this.o.client, keys, me: { ...this.o.me, since: '' }, ttlSeconds: this.o.ttlSeconds, log: this.o.log });
      this.leadership = leadership;
      let term: number;
      try {
        term = await leadership.campaign((leader) => {
          const address = leader && leader.id !== this.o.me.id ? leader.address : undefined;
          if (address !== lastLeader) this.o.log.info({ leader: address ?? null, term: leader?.term }, address ? 'following the leader coordinator' : 'no leader coordinator');
          lastLeader = address;
          this.o.server.follow(address);
        });
      } catch {
        return; // stopped
      }
      // a loss while the state is read must not go unheard: the load yields, and the deadline timer may fire meanwhile
      let lostWhy: string | undefined;
      let onLoss: ((why: string) => void) | undefined;
      leadership.onLost((why) => {
        lostWhy ??= why;
        onLoss?.(why);
      });
      this.o.server.elected();
      let backend;
      try {
        backend = await etcdBackend({ kv: this.o.client.kv, prefix: this.o.prefix, term, leaderUntil: () => leadership.until(), log: this.o.log });
      } catch (err) {
        this.o.log.error({ err: (err as Error).message, term }, 'elected, but the cluster state could not be read from etcd: giving the leadership up');
        this.o.server.follow(undefined);
        await leadership.resign();
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      if (lostWhy !== undefined || this.stopping) {
        // the held calls must not reach a coordinator that no longer leads
        this.o.log.warn({ term, why: lostWhy ?? 'stopping' }, 'leadership ended while the cluster state was being read: not acting on it');
        backend.close();
        this.o.server.follow(undefined);
        await leadership.resign();
        continue;
      }
      const lost = new Promise<string>((resolve) => {
        onLoss = resolve;
        backend.onLost((err) => {
          leadership.lose(err.message);
          resolve(err.message);
        });
        this.wake = () => resolve('stopping');
      });
      const coordinator = new Coordinator(this.o.config, this.o.log);
      this.coordinator = coordinator;
      this.terms.push(term);
      coordinator.start(backend, this.o.server, { term, until: () => leadership.until(), agentReconnectMs: AGENT_RECONNECT_TO_NEW_LEADER_MS });
      const why = await lost;
      this.o.log.warn({ term, why }, why === 'stopping' ? 'leaving the leadership' : 'leadership lost: stopping acting as leader');
      await coordinator.stop({ flush: why === 'stopping' });
      this.coordinator = undefined;
      // nothing acts for this term any more: its key and lease go now if etcd can be reached (the next leader need
      // not wait for them to expire), else they expire on their own
      await leadership.resign();
    }
  }

  get leading(): boolean {
    return this.coordinator?.state.phase === 'running';
  }

  /** A clean stop: the last changes written, leadership handed over at once (the key deleted, not left to expire). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    if (!this.coordinator) await this.leadership?.resign();
    await this.done;
  }
}
