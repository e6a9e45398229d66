/**
 * Writes a small TensorBoard events file with @gantry/monitor's EventFileWriter (scalars at several steps and one
 * RGB PNG image) plus the expected values, for scripts/gpu/tb_check.py to read with TensorBoard's own
 * EventAccumulator on a machine that has Python tensorboard installed.
 *
 *   npx tsx --conditions=@gantry/source scripts/gpu/tb-write.ts .gpu/tb
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeImageGrid } from '../../packages/monitor/src/images.js';
import { EventFileWriter } from '../../packages/monitor/src/tensorboard/writer.js';
import { COLORSPACE } from '../../packages/monitor/src/tensorboard/events.js';

const dir = process.argv[2] ?? '.gpu/tb';
fs.rmSync(dir, { recursive: true, force: true });
const writer = new EventFileWriter(dir, { now: () => 1_763_800_000_000, hostname: 'gantry-check' });

const scalars: { step: number; tag: string; value: number }[] = [];
for (const step of [0, 1, 2, 10, 100, 12345, 2 ** 33]) {
  const values = {
    d_loss: Math.fround(1.386294 - step * 1e-6),
    g_loss: Math.fround(-0.6931 + Math.sin(step)),
    'D/gp/penalty': Math.fround(1e-7 * (step + 1)),
  };
  writer.addScalars(step, values);
  for (const [tag, value] of Object.entries(values)) scalars.push({ step, tag, value });
}

// A 3x2 grid of 5x7 RGB images (values from a closed form), so width and height differ.
const n = 6;
const h = 5;
const w = 7;
const data = new Float32Array(n * h * w * 3);
for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37);
const grid = encodeImageGrid(data, [n, h, w, 3], { cols: 3 });
writer.addImage(7, 'samples/fixed_noise', {
  height: grid.height,
  width: grid.width,
  colorspace: COLORSPACE.rgb,
  encoded: grid.png,
});
writer.close();

const expected = {
  file: path.basename(writer.file),
  scalars,
  image: {
    tag: 'samples/fixed_noise',
    step: 7,
    width: grid.width,
    height: grid.height,
    sha256: createHash('sha256').update(grid.png).digest('hex'),
  },
};
fs.writeFileSync(path.join(dir, 'expected.json'), JSON.stringify(expected, null, 1));
console.log(`wrote ${writer.file} (${fs.statSync(writer.file).size} bytes), image ${grid.width}x${grid.height}`);
