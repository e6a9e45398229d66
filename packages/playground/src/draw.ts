/** Draws 2-D samples as dots in [-extent, extent]², with the data's mode centres as rings. */
export function drawScatter(
  canvas: HTMLCanvasElement,
  points: Float32Array,
  centers: readonly (readonly [number, number])[] = [],
  extent = 3,
): number {
  const ctx = canvas.getContext('2d')!;
  const { width, height } = canvas;
  const sx = (x: number) => ((x + extent) / (2 * extent)) * width;
  const sy = (y: number) => height - ((y + extent) / (2 * extent)) * height;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  ctx.strokeStyle = '#bbb';
  for (const [cx, cy] of centers) {
    ctx.beginPath();
    ctx.arc(sx(cx), sy(cy), 6, 0, 2 * Math.PI);
    ctx.stroke();
  }
  ctx.fillStyle = 'rgba(31, 119, 180, 0.55)';
  let drawn = 0;
  for (let i = 0; i + 1 < points.length; i += 2) {
    const [x, y] = [sx(points[i]), sy(points[i + 1])];
    if (x >= 0 && x < width && y >= 0 && y < height) {
      ctx.fillRect(x - 1, y - 1, 2, 2);
      drawn++;
    }
  }
  return drawn;
}

/** Draws n images [n, h, w, c] in [-1, 1] as a grid of `cols` a row (grey or RGB), square by default. */
export function drawGrid(canvas: HTMLCanvasElement, values: Float32Array, shape: number[], cols = Math.ceil(Math.sqrt(shape[0]))): void {
  const [n, h, w, c] = shape;
  const rows = Math.ceil(n / cols);
  const image = new ImageData(cols * w, rows * h);
  for (let k = 0; k < n; k++) {
    const [ox, oy] = [(k % cols) * w, Math.floor(k / cols) * h];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = ((oy + y) * cols * w + ox + x) * 4;
        for (let ch = 0; ch < 3; ch++) {
          const v = values[((k * h + y) * w + x) * c + (c === 3 ? ch : 0)];
          image.data[at + ch] = Math.round(Math.min(1, Math.max(-1, v)) * 127.5 + 127.5);
        }
        image.data[at + 3] = 255;
      }
    }
  }
  const scratch = document.createElement('canvas');
  [scratch.width, scratch.height] = [image.width, image.height];
  scratch.getContext('2d')!.putImageData(image, 0, 0);
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const scale = Math.min(canvas.width / image.width, canvas.height / image.height);
  ctx.drawImage(scratch, 0, 0, image.width * scale, image.height * scale);
}
