export { ConfigFileError, checkFileTrust, parseConfigText, readTrustedFile, resolveTrustedPath, type ConfigEntry, type ConfigProblem, type PathEntryKind, type TrustProblem } from './read.js';
export { applyConfigFile, configFileHelp, configKey, configureOrExit, type ConfigFileOptions, type ConfigurableCommand, type ConfigurableOption } from './apply.js';
export { nearest } from './nearest.js';
