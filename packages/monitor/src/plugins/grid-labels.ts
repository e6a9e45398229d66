/** Labels for a grid: row r (of `cols` images each) shows class r mod numClasses. */
export function gridLabels(count: number, cols: number, numClasses: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => Math.floor(i / cols) % numClasses);
}
