export { ConfigFileError, checkFileTrust, parseConfigText, readTrustedFile, type ConfigEntry, type ConfigProblem } from './read.js';
export { applyConfigFile, configFileHelp, configKey, configureOrExit, type ConfigFileOptions, type ConfigurableCommand, type ConfigurableOption } from './apply.js';
export { nearest } from './nearest.js';
