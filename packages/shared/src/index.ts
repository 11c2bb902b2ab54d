export * from './base.js';
export * from './proto.js';
export * from './grpc-errors.js';
export type { CleanupStatusRow, DiskStatusRow } from './cleanup-status.js';
