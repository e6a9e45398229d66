export { packSamples, packDiscriminator, Pack, type PackArgs } from './pack.js';
export { pacgan, type PacganOptions, type PacganPlugin } from './plugin.js';
