import sharp from 'sharp';

/** Mean R, G, B (0..255) and size of an encoded image. */
export async function meanColour(bytes: Buffer | Uint8Array): Promise<{ r: number; g: number; b: number; width: number; height: number }> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let r = 0;
  let g = 0;
  let b = 0;
  const n = info.width * info.height;
  for (let i = 0; i < n; i++) {
    r += data[i * 3];
    g += data[i * 3 + 1];
    b += data[i * 3 + 2];
  }
  return { r: r / n, g: g / n, b: b / n, width: info.width, height: info.height };
}

/** The dominant channel of a mean colour, or 'grey' when no channel leads by `margin`. */
export function dominant(c: { r: number; g: number; b: number }, margin = 40): 'red' | 'green' | 'blue' | 'grey' {
  const entries: Array<['red' | 'green' | 'blue', number]> = [
    ['red', c.r],
    ['green', c.g],
    ['blue', c.b],
  ];
  entries.sort((a, b) => b[1] - a[1]);
  return entries[0][1] - entries[1][1] >= margin ? entries[0][0] : 'grey';
}
