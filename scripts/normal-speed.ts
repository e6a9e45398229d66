/**
 * CPU time per value of the two latent normal generators in one process, alternating A and B each round:
 * `normalValues` (tf.randomNormal's numbers, the default) and `fastNormalValues` (ziggurat, `normalGenerator: 'fast'`).
 * Times are process CPU time (`process.cpuUsage`, user + system), so time the process spends preempted on a loaded
 * machine does not count; prints the minimum over the rounds (the least disturbed) and the median.
 *
 *   node --expose-gc --import tsx --conditions=@gantry/source scripts/normal-speed.ts [--count 790000] [--rounds 15]
 *
 * With --expose-gc a collection runs before each timed draw, so the figure is the generator's and not the collection
 * its 3 MB output array happened to trigger (which both generators pay alike in a training step).
 */
import { Command } from 'commander';
import { fastNormalValues, normalValues } from '@gantry/core';

const opts = new Command()
  .option('--count <n>', 'values per draw (790 000 ≈ the latents of one 3-member toy ring step)', '790000')
  .option('--rounds <n>', 'rounds, each timing both generators', '15')
  .parse()
  .opts<{ count: string; rounds: string }>();

const count = Number(opts.count);
const generators = { normalValues, fastNormalValues } as const;
const times: Record<keyof typeof generators, number[]> = { normalValues: [], fastNormalValues: [] };
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});
let checksum = 0;
for (let round = 0; round < Number(opts.rounds); round++) {
  for (const name of Object.keys(generators) as (keyof typeof generators)[]) {
    collect();
    const start = process.cpuUsage();
    const values = generators[name](count, 0, 1, round + 1);
    const used = process.cpuUsage(start);
    times[name].push(((used.user + used.system) * 1000) / count);
    checksum += values[count - 1]; // keeps the draw observable
  }
}
for (const [name, list] of Object.entries(times)) {
  const sorted = [...list].sort((a, b) => a - b);
  console.log(`${name.padEnd(17)} min ${sorted[0].toFixed(2)} ns/value, median ${sorted[sorted.length >> 1].toFixed(2)} ns/value`);
}
console.log(`(${count} values per draw, ${opts.rounds} rounds, gc between draws: ${collect.name === 'gc'}, checksum ${checksum.toFixed(3)})`);
