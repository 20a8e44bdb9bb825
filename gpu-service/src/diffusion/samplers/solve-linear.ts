/**
 * Solve a small dense linear system A·x = b (float64) by Gaussian elimination with partial pivoting.
 * Used for UniPC's ρ coefficients (k ≤ 3), where torch.linalg.solve is used upstream.
 * A is row-major number[][] (n×n), b has n entries; neither is mutated.
 * @throws RangeError for a singular (or non-square) system.
 */
export function solveLinear(a: readonly (readonly number[])[], b: readonly number[]): number[] {
  const n = b.length;
  if (a.length !== n || a.some((row) => row.length !== n)) throw new RangeError('solveLinear needs a square system');
  const m = a.map((row, i) => [...row, b[i]]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) pivot = r;
    if (m[pivot][col] === 0 || !Number.isFinite(m[pivot][col])) throw new RangeError('solveLinear: singular system');
    [m[col], m[pivot]] = [m[pivot], m[col]];
    for (let r = col + 1; r < n; r++) {
      const f = m[r][col] / m[col][col];
      for (let c = col; c <= n; c++) m[r][c] -= f * m[col][c];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let c = r + 1; c < n; c++) s -= m[r][c] * x[c];
    x[r] = s / m[r][r];
  }
  return x;
}
