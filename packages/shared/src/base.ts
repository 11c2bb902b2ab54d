// Everything shared that does not load gRPC: the small daemons (slot-fence, slot-syslogd) import this and start in
// half the time, which matters when a whole host's agents start them at once (see FENCE_START_TIMEOUT_MS).
export * from './errors.js';
export * from './log.js';
export * from './duration.js';
export * from './size.js';
export * from './validate.js';
export * from './atomic-file.js';
export * from './file-stamp.js';
export * from './version.js';
export * from './priority.js';
export * from './loop-lag.js';
export * from './lease-timing.js';
