import sharp from 'sharp';

/** A solid or two-colour test picture as PNG base64 plus its raw RGB (left half `left`, right half `right`). */
export async function splitImage(width: number, height: number, left: [number, number, number], right: [number, number, number]) {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = x < width / 2 ? left : right;
      rgb.set(c, (y * width + x) * 3);
    }
  }
  const png = await sharp(Buffer.from(rgb), { raw: { width, height, channels: 3 } }).png().toBuffer();
  return { rgb, b64: png.toString('base64') };
}

/** A mask PNG (base64): `inside(x, y)` true marks the area to repaint, in the given convention. */
export async function maskImage(width: number, height: number, inside: (x: number, y: number) => boolean, mode: 'alpha' | 'white'): Promise<string> {
  const px = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      const on = inside(x, y);
      if (mode === 'alpha') px.set(on ? [0, 0, 0, 0] : [0, 0, 0, 255], o);
      else px.set(on ? [255, 255, 255, 255] : [0, 0, 0, 255], o);
    }
  }
  return (await sharp(Buffer.from(px), { raw: { width, height, channels: 4 } }).png().toBuffer()).toString('base64');
}

/** Mean RGB of the pixels where `where(x, y)` holds. */
export function regionMean(rgb: Uint8Array, width: number, height: number, where: (x: number, y: number) => boolean): [number, number, number] {
  const s = [0, 0, 0];
  let n = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!where(x, y)) continue;
      const o = (y * width + x) * 3;
      s[0] += rgb[o];
      s[1] += rgb[o + 1];
      s[2] += rgb[o + 2];
      n++;
    }
  }
  return [s[0] / n, s[1] / n, s[2] / n];
}
