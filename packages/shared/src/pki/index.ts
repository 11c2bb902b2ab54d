export * from './certificates.js';
export * from './directory.js';
