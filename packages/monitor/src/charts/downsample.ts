/** Bucket means, keeping the first and last point, so long runs stay light without shifting the curve. */
export function downsample(points: [number, number][], max: number): [number, number][] {
  if (points.length <= max) return points;
  const out: [number, number][] = [];
  const size = points.length / max;
  for (let b = 0; b < max; b++) {
    const start = Math.floor(b * size);
    const end = Math.min(points.length, Math.floor((b + 1) * size));
    let sx = 0;
    let sy = 0;
    for (let i = start; i < end; i++) {
      sx += points[i][0];
      sy += points[i][1];
    }
    out.push([sx / (end - start), sy / (end - start)]);
  }
  out[0] = points[0];
  out[out.length - 1] = points[points.length - 1];
  return out;
}
