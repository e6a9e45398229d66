export { ProgressiveGan, progressiveGan, type ProgressiveGanOptions } from './models.js';
export { FadeIn, PixelNorm } from './layers.js';
export { progressive, resetOptimizer, type ProgressiveOptions, type ProgressivePlugin } from './plugin.js';
export {
  growthAt,
  resolveSchedule,
  scheduleLength,
  type GrowthSchedule,
  type GrowthPhase,
  type ResolvedSchedule,
} from './schedule.js';
export { padImages, downsample, upsample2x, fadeReal } from './images.js';
