/**
 * Right pseudo-inverse of a full-row-rank matrix: P = Aᵀ (A Aᵀ)⁻¹, so that A·P = I.
 * Used to turn the VAE decoder's 3×4 latent→RGB map into the encoder's 4×3 RGB→latent map
 * (Moore–Penrose inverse for full row rank; Golub & Van Loan, Matrix Computations §5.5).
 *
 * @param a rows × cols matrix as an array of rows (rows ≤ cols), float64.
 * @returns cols × rows matrix as an array of rows.
 * @throws Error when A·Aᵀ is singular (A not of full row rank).
 */
export function rightPseudoInverse(a: readonly (readonly number[])[]): number[][] {
  const rows = a.length;
  const cols = a[0].length;
  // G = A Aᵀ (rows × rows), inverted by Gauss–Jordan elimination with partial pivoting.
  const g: number[][] = [];
  for (let i = 0; i < rows; i++) {
    g.push([]);
    for (let j = 0; j < rows; j++) {
      let sum = 0;
      for (let k = 0; k < cols; k++) sum += a[i][k] * a[j][k];
      g[i].push(sum);
    }
  }
  const inv = invertSquare(g);
  const p: number[][] = [];
  for (let k = 0; k < cols; k++) {
    p.push([]);
    for (let j = 0; j < rows; j++) {
      let sum = 0;
      for (let i = 0; i < rows; i++) sum += a[i][k] * inv[i][j];
      p[k].push(sum);
    }
  }
  return p;
}

/** Inverse of a small square matrix (Gauss–Jordan, partial pivoting). @throws Error when singular. */
function invertSquare(m: readonly (readonly number[])[]): number[][] {
  const n = m.length;
  const work = m.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(work[r][col]) > Math.abs(work[pivot][col])) pivot = r;
    if (Math.abs(work[pivot][col]) < 1e-12) throw new Error('rightPseudoInverse: matrix is not of full row rank');
    [work[col], work[pivot]] = [work[pivot], work[col]];
    const scale = work[col][col];
    for (let j = 0; j < 2 * n; j++) work[col][j] /= scale;
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = work[r][col];
      if (f !== 0) for (let j = 0; j < 2 * n; j++) work[r][j] -= f * work[col][j];
    }
  }
  return work.map((row) => row.slice(n));
}
