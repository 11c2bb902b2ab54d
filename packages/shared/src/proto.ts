// Loads the gRPC contract at run time. The generated types (src/generated, made by `pnpm gen` from proto/) only
// describe what this loader returns; hand-written code imports them from here.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './generated/slotctl.js';

/** Where the contract may be, in order: inside this package (an installed package: the .deb build copies proto/
 * there, tools/package), then the checkout's proto/ (this file in packages/shared/src or /dist). */
export const PROTO_CANDIDATES: readonly string[] = ['../proto/slotctl.proto', '../../../proto/slotctl.proto'].map((p) =>
  fileURLToPath(new URL(p, import.meta.url)),
);
/** The first candidate that exists (the checkout's when none does: loading then fails naming every place looked at). */
export const PROTO_PATH = PROTO_CANDIDATES.find((p) => existsSync(p)) ?? PROTO_CANDIDATES[PROTO_CANDIDATES.length - 1]!;
/** The same contract parsed at build time (scripts/contract-json.mjs, with the .proto's hash): a third of the start-up cost. */
export const CONTRACT_JSON_PATH = fileURLToPath(new URL('../dist/contract.json', import.meta.url));

/** Options that must match the ones the types were generated with (see package.json "gen"). */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached: ProtoGrpcType | undefined;

/** The contract as the build parsed it, or parsed from the .proto when that changed since (edited, not rebuilt). */
export function contractDefinition(source: 'auto' | 'proto' = 'auto'): protoLoader.PackageDefinition {
  if (source === 'auto') {
    try {
      const built = JSON.parse(readFileSync(CONTRACT_JSON_PATH, 'utf8')) as { protoSha256?: string; root?: Record<string, unknown> };
      if (built.root && built.protoSha256 === createHash('sha256').update(readFileSync(PROTO_PATH)).digest('hex')) {
        return protoLoader.fromJSON(built.root, LOADER_OPTIONS);
      }
    } catch {
      // not built yet: the .proto below
    }
  }
  if (!existsSync(PROTO_PATH)) throw new ContractMissingError(`the gRPC contract slotctl.proto is missing: looked at ${PROTO_CANDIDATES.join(', ')}`);
  return protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
}

/** Neither the installed nor the checkout's contract is there: a broken install or checkout. */
export class ContractMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContractMissingError';
  }
}

export function loadContract(): ProtoGrpcType {
  cached ??= grpc.loadPackageDefinition(contractDefinition()) as unknown as ProtoGrpcType;
  return cached;
}

export type { AgentMessage, AgentMessage__Output } from './generated/slotctl/v1/AgentMessage.js';
export type { CoordinatorMessage, CoordinatorMessage__Output } from './generated/slotctl/v1/CoordinatorMessage.js';
export type { DesiredSlot, DesiredSlot__Output } from './generated/slotctl/v1/DesiredSlot.js';
export type { SlotRequest, SlotRequest__Output } from './generated/slotctl/v1/SlotRequest.js';
export type { SlotResult, SlotResult__Output } from './generated/slotctl/v1/SlotResult.js';
export type { DesiredState, DesiredState__Output } from './generated/slotctl/v1/DesiredState.js';
export type { SlotReport, SlotReport__Output } from './generated/slotctl/v1/SlotReport.js';
export type { Backlog, Backlog__Output } from './generated/slotctl/v1/Backlog.js';
export type { MailboxSummary, MailboxSummary__Output } from './generated/slotctl/v1/MailboxSummary.js';
export type { OperationInfo, OperationInfo__Output } from './generated/slotctl/v1/OperationInfo.js';
export type { SwitchoverRequest } from './generated/slotctl/v1/SwitchoverRequest.js';
export type { SwitchoverReply__Output } from './generated/slotctl/v1/SwitchoverReply.js';
export type { MoveReplicaRequest } from './generated/slotctl/v1/MoveReplicaRequest.js';
export type { MoveReplicaReply__Output } from './generated/slotctl/v1/MoveReplicaReply.js';
export type { DrainRequest } from './generated/slotctl/v1/DrainRequest.js';
export type { DrainReply__Output } from './generated/slotctl/v1/DrainReply.js';
export type { UndrainReply__Output } from './generated/slotctl/v1/UndrainReply.js';
export type { ListOperationsRequest } from './generated/slotctl/v1/ListOperationsRequest.js';
export type { ListOperationsReply__Output } from './generated/slotctl/v1/ListOperationsReply.js';
export type { OperationReply__Output } from './generated/slotctl/v1/OperationReply.js';
export type { StepRecord__Output } from './generated/slotctl/v1/StepRecord.js';
export type { Hello__Output } from './generated/slotctl/v1/Hello.js';
export type { Applied, Applied__Output } from './generated/slotctl/v1/Applied.js';
export type { SlotApply } from './generated/slotctl/v1/SlotApply.js';
export type { Role__Output as Role } from './generated/slotctl/v1/Role.js';
export type { SlotState__Output as SlotState } from './generated/slotctl/v1/SlotState.js';
export type { ApplyResult__Output as ApplyResult } from './generated/slotctl/v1/ApplyResult.js';
export type { AgentClient } from './generated/slotctl/v1/Agent.js';
export type { AgentHandlers } from './generated/slotctl/v1/Agent.js';
export type { AdminClient, AdminHandlers } from './generated/slotctl/v1/Admin.js';
export type { MachineInfo, MachineInfo__Output } from './generated/slotctl/v1/MachineInfo.js';
export type { StoreInfo, StoreInfo__Output } from './generated/slotctl/v1/StoreInfo.js';
export type { SlotInfo, SlotInfo__Output } from './generated/slotctl/v1/SlotInfo.js';
export type { EventInfo, EventInfo__Output } from './generated/slotctl/v1/EventInfo.js';
export type { ListEventsRequest } from './generated/slotctl/v1/ListEventsRequest.js';
export type { ApplyClusterRequest } from './generated/slotctl/v1/ApplyClusterRequest.js';
export type { ExportClusterRequest } from './generated/slotctl/v1/ExportClusterRequest.js';
export type { ExportClusterReply__Output } from './generated/slotctl/v1/ExportClusterReply.js';
export type { StatusReply, StatusReply__Output } from './generated/slotctl/v1/StatusReply.js';
export type { ListMachinesReply__Output } from './generated/slotctl/v1/ListMachinesReply.js';
export type { ListStoresReply__Output } from './generated/slotctl/v1/ListStoresReply.js';
export type { ListEventsReply__Output } from './generated/slotctl/v1/ListEventsReply.js';
export type { ListEventsRequest__Output } from './generated/slotctl/v1/ListEventsRequest.js';
export type { ApplyClusterRequest__Output } from './generated/slotctl/v1/ApplyClusterRequest.js';
export type { ApplyClusterReply, ApplyClusterReply__Output } from './generated/slotctl/v1/ApplyClusterReply.js';
export type { ClusterProblem } from './generated/slotctl/v1/ClusterProblem.js';
export type { ClusterChange } from './generated/slotctl/v1/ClusterChange.js';
export type { ListSlotsRequest } from './generated/slotctl/v1/ListSlotsRequest.js';
export type { ListSlotsReply__Output } from './generated/slotctl/v1/ListSlotsReply.js';
export type { SetSlotRunRequest } from './generated/slotctl/v1/SetSlotRunRequest.js';
export type { SetSlotRunReply__Output } from './generated/slotctl/v1/SetSlotRunReply.js';
export type { ReplayReport, ReplayReport__Output } from './generated/slotctl/v1/ReplayReport.js';
export type { ReplaySlotReply__Output } from './generated/slotctl/v1/ReplaySlotReply.js';
export type { PeerClient, PeerHandlers } from './generated/slotctl/v1/Peer.js';
export type { ConfirmRequest, ConfirmRequest__Output } from './generated/slotctl/v1/ConfirmRequest.js';
export type { ConfirmReply, ConfirmReply__Output } from './generated/slotctl/v1/ConfirmReply.js';
export type { PeerAgent, PeerAgent__Output } from './generated/slotctl/v1/PeerAgent.js';
export type { PeerView, PeerView__Output } from './generated/slotctl/v1/PeerView.js';
export type { GuidsRequest, GuidsRequest__Output } from './generated/slotctl/v1/GuidsRequest.js';
export type { GuidsReply, GuidsReply__Output } from './generated/slotctl/v1/GuidsReply.js';
export type { Quarantine, Quarantine__Output } from './generated/slotctl/v1/Quarantine.js';
export type { RecoverReport, RecoverReport__Output } from './generated/slotctl/v1/RecoverReport.js';
export type { MailboxRecovery } from './generated/slotctl/v1/MailboxRecovery.js';
export type { FailoverMachineReply__Output } from './generated/slotctl/v1/FailoverMachineReply.js';
export type { AtRiskInfo, AtRiskInfo__Output } from './generated/slotctl/v1/AtRiskInfo.js';
export type { ListAtRiskReply__Output } from './generated/slotctl/v1/ListAtRiskReply.js';
export type { RecoverReply__Output } from './generated/slotctl/v1/RecoverReply.js';
export type { PlanReply__Output } from './generated/slotctl/v1/PlanReply.js';
export type { RetireMachineReply__Output } from './generated/slotctl/v1/RetireMachineReply.js';
export type { SeedReport, SeedReport__Output } from './generated/slotctl/v1/SeedReport.js';
export type { SeedProgress, SeedProgress__Output } from './generated/slotctl/v1/SeedProgress.js';
export type { CleanupReport, CleanupReport__Output } from './generated/slotctl/v1/CleanupReport.js';
export type { PartitionReport, PartitionReport__Output } from './generated/slotctl/v1/PartitionReport.js';
export type { SyncUsersRequest__Output } from './generated/slotctl/v1/SyncUsersRequest.js';
export type { SyncUsersReply } from './generated/slotctl/v1/SyncUsersReply.js';
export type { RenewRequest__Output } from './generated/slotctl/v1/RenewRequest.js';
export type { HeartbeatAck, HeartbeatAck__Output } from './generated/slotctl/v1/HeartbeatAck.js';

/** As the only name of a check request (CheckRequest.mailboxes): summarize every mailbox the slot holds (a new replica's check). */
export const ALL_MAILBOXES = '*';

/** The largest Admin message the coordinator sends and slotctl accepts: the status of a large cluster (1,000
 * machines, 9,000 stores) is over gRPC's default 4 MB. One constant so that the two ends cannot disagree. */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
export type { RelayRequest, RelayRequest__Output } from './generated/slotctl/v1/RelayRequest.js';
export type { RelayedRenew, RelayedRenew__Output } from './generated/slotctl/v1/RelayedRenew.js';
