/**
 * Face-restoration units: NMS, the similarity fit, warp round trips, the feather weight, the detector and restorer
 * interfaces on the synthetic stand-ins (scripts/tiny-model/face-models.ts), and the whole stage pixel by pixel.
 */
import { describe, expect, it } from 'vitest';
import { OnnxModel } from '../../../../gpu-service/src/onnx/session';
import type { OnnxGraph } from '../../../../gpu-service/src/graphs/onnx-graph';
import { applyAffine, estimateSimilarity, FACE_TEMPLATE_512, faceTemplate, invertAffine, warpAffine } from '../../../../gpu-service/src/postprocess/faces/align';
import { detectFaces } from '../../../../gpu-service/src/postprocess/faces/face-detector';
import { faceSettings } from '../../../../gpu-service/src/postprocess/faces/face-settings';
import { parseSidecar } from '../../../../gpu-service/src/postprocess/postprocess-interfaces';
import { restoreCrop, restorerInputs, restorerSize } from '../../../../gpu-service/src/postprocess/faces/face-restorer';
import { iou, nonMaxSuppression } from '../../../../gpu-service/src/postprocess/faces/nms';
import { featherWeight, FEATHER_FRACTION } from '../../../../gpu-service/src/postprocess/faces/paste-back';
import { restoreFaces } from '../../../../gpu-service/src/postprocess/faces/restore-faces';
import { buildTestFaceDetectorGraph, buildTestFaceRestorerGraph } from '../../../../scripts/tiny-model/face-models';

const open = (g: OnnxGraph) => OnnxModel.open(`${g.name}.onnx`, { executionProviders: ['cpu'] }, { model: g.toBytes() });

/** A width × height image: pixel (x, y) = (3x + y, 2y + 1, (x·y) % 200) (never magenta), with a magenta square. */
function scene(width: number, height: number, square?: { x: number; y: number; side: number }): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = (3 * x + y) % 256;
      rgb[i + 1] = (2 * y + 1) % 256;
      rgb[i + 2] = (x * y) % 200;
      if (square && x >= square.x && x < square.x + square.side && y >= square.y && y < square.y + square.side) {
        // A magenta frame two pixels wide around a patterned inside (the detector boxes the frame).
        const edge = x < square.x + 2 || y < square.y + 2 || x >= square.x + square.side - 2 || y >= square.y + square.side - 2;
        if (edge) rgb.set([255, 0, 255], i);
        else rgb.set([(5 * x) % 256, (7 * y) % 256, (x + y) % 256], i);
      }
    }
  }
  return rgb;
}

describe('non-max suppression', () => {
  it('keeps the best of overlapping boxes and every box that overlaps less than the threshold', () => {
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(50 / 150, 12);
    expect(iou([0, 0, 10, 10], [20, 20, 30, 30])).toBe(0);
    const boxes = [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [5, 0, 15, 10]] as const;
    // 0 and 1 overlap at IoU 9/11 > 0.4: the better (1) stays; 3 overlaps 1 at 6/14 > 0.4 → dropped; 2 is apart.
    expect(nonMaxSuppression(boxes, [0.8, 0.9, 0.7, 0.6], 0.4)).toEqual([1, 2]);
    expect(nonMaxSuppression(boxes, [0.8, 0.9, 0.7, 0.6], 0.9)).toEqual([1, 0, 2, 3]);
  });
});

describe('alignment', () => {
  it('fits the exact similarity (rotation, scale, shift) from 5 landmarks and inverts it', () => {
    const theta = 0.3, s = 1.7, tx = 12.5, ty = -4;
    const m = [s * Math.cos(theta), -s * Math.sin(theta), tx, s * Math.sin(theta), s * Math.cos(theta), ty] as const;
    const src = FACE_TEMPLATE_512.map(([x, y]) => [x / 4 + 3, y / 5 - 2] as [number, number]);
    const dst = src.map(([x, y]) => applyAffine(m, x, y));
    const fit = estimateSimilarity(src, dst);
    fit.forEach((v, i) => expect(v).toBeCloseTo(m[i], 9));
    const back = applyAffine(invertAffine(fit), ...applyAffine(fit, 7, 9));
    expect(back[0]).toBeCloseTo(7, 9);
    expect(back[1]).toBeCloseTo(9, 9);
    expect(() => estimateSimilarity([[1, 1], [1, 1]], [[0, 0], [2, 2]])).toThrow(/coincide/);
    expect(faceTemplate(256)[2]).toEqual([256.63416 / 2, 314.01935 / 2]);
  });

  it('warps bilinearly as cv2.warpAffine: an integer ×2 zoom reads source pixels at odd points, halfway between at even ones, the border outside', () => {
    const w = 5, h = 4;
    const src = Float32Array.from({ length: w * h }, (_, i) => i * 3 + 1);
    const zoom = [2, 0, -1, 0, 2, 0] as const; // q = 2p + (−1, 0)
    const out = warpAffine(src, 1, w, h, zoom, 10, 8, [99]);
    expect(out[0 * 10 + 1]).toBeCloseTo(src[1], 5); // q (1, 0) ← p ((1 + 1) / 2, 0) = (1, 0)
    expect(out[2 * 10 + 5]).toBeCloseTo(src[1 * w + 3], 5); // q (5, 2) ← p (3, 1)
    expect(out[2 * 10 + 4]).toBeCloseTo((src[1 * w + 2] + src[1 * w + 3]) / 2, 5); // halfway
    expect(out[0]).toBeCloseTo((src[0] + src[1]) / 2, 5); // q (0, 0) ← p (0.5, 0)
    expect(out[7 * 10 + 8]).toBeCloseTo(0.25 * src[3 * w + 4] + 0.75 * 99, 5); // q (8, 7) ← p (4.5, 3.5): 3 of 4 taps outside → border
  });

  it('feathers linearly over the outer tenth of the crop side, 0 outside it', () => {
    expect(FEATHER_FRACTION).toBe(0.1);
    expect(featherWeight(-0.5, 100, 512)).toBe(0);
    expect(featherWeight(0, 100, 512)).toBeCloseTo(0.5 / 51.2, 12);
    expect(featherWeight(25.1, 100, 512)).toBeCloseTo(25.6 / 51.2, 12);
    expect(featherWeight(50.7, 100, 512)).toBe(1);
    expect(featherWeight(256, 256, 512)).toBe(1);
    expect(featherWeight(511, 256, 512)).toBeCloseTo(0.5 / 51.2, 12);
    expect(featherWeight(511.5, 256, 512)).toBe(0);
  });
});

describe('face settings', () => {
  it('defaults and refusals', () => {
    expect(faceSettings({})).toEqual({ score_threshold: 0.5, nms_iou: 0.4, fidelity_input: undefined });
    expect(() => faceSettings({ score_threshold: 2 } as never)).toThrow(/score_threshold/);
    expect(() => faceSettings({ nms: 0.3 } as never)).toThrow(/nms: not a facerestore sidecar field/);
    // parseSidecar applies them, so the listing shows a bad face sidecar as the model's error.
    expect(() => parseSidecar('facerestore', { role: 'detector', nms_iou: -1 })).toThrow(/^nms_iou: /);
    expect(parseSidecar('facerestore', { role: 'restorer', fidelity_input: 'weight' })).toEqual({ role: 'restorer', fidelity_input: 'weight' });
  });
});

describe('detector stand-in through detectFaces', () => {
  it('finds the magenta square: box, score 1, landmarks on the template scaled to the box', async () => {
    const session = await open(buildTestFaceDetectorGraph());
    const faces = await detectFaces(session, {}, scene(96, 80, { x: 20, y: 10, side: 64 }), 96, 80);
    expect(faces).toHaveLength(1);
    expect(faces[0].box).toEqual([20, 10, 84, 74]);
    expect(faces[0].score).toBe(1);
    faces[0].landmarks.forEach(([x, y], k) => {
      expect(x).toBeCloseTo(20 + (FACE_TEMPLATE_512[k][0] * 64) / 512, 4);
      expect(y).toBeCloseTo(10 + (FACE_TEMPLATE_512[k][1] * 64) / 512, 4);
    });
  });

  it('finds nothing without magenta, or when the score threshold is above 1', async () => {
    const session = await open(buildTestFaceDetectorGraph());
    expect(await detectFaces(session, {}, scene(40, 30), 40, 30)).toEqual([]);
    expect(await detectFaces(session, { score_threshold: 1 }, scene(40, 30, { x: 1, y: 1, side: 8 }), 40, 30)).toHaveLength(1);
  });

  it('scales detections back when the detector runs at a sidecar input size', async () => {
    const session = await open(buildTestFaceDetectorGraph());
    // 64×64 image fed at 32×32: a 32-pixel square at (16, 16) stays pure magenta inside after the 2× bilinear shrink.
    const faces = await detectFaces(session, { input_size: [32, 32] }, scene(64, 64, { x: 16, y: 16, side: 32 }), 64, 64);
    expect(faces).toHaveLength(1);
    expect(faces[0].box).toEqual([16, 16, 48, 48]);
  });
});

describe('restorer stand-in through restoreCrop', () => {
  it('w = 0 inverts, w = 1 returns the crop, w = 0.5 is grey 127.5', async () => {
    const session = await open(buildTestFaceRestorerGraph(16));
    expect(restorerInputs(session, {})).toEqual({ image: 'input', fidelity: 'w' });
    expect(restorerSize(session, {}, 'input')).toBe(16);
    const crop = Float32Array.from({ length: 3 * 16 * 16 }, (_, i) => (i * 7) % 256);
    const inverted = await restoreCrop(session, {}, crop, 16, 0);
    const same = await restoreCrop(session, {}, crop, 16, 1);
    const grey = await restoreCrop(session, {}, crop, 16, 0.5);
    for (let i = 0; i < crop.length; i++) {
      expect(inverted[i]).toBeCloseTo(255 - crop[i], 3);
      expect(same[i]).toBeCloseTo(crop[i], 3);
      expect(grey[i]).toBeCloseTo(127.5, 4);
    }
    await expect(restoreCrop(session, {}, crop, 8, 0)).rejects.toThrow();
  });
});

describe('restoreFaces (detector + restorer stand-ins)', () => {
  it('the face is the known transform inside, the original outside the crop, the documented ramp between', async () => {
    const models = { detector: { session: await open(buildTestFaceDetectorGraph()), sidecar: {} }, restorer: { session: await open(buildTestFaceRestorerGraph()), sidecar: {} } };
    const W = 100, H = 90, X = 20, Y = 12, L = 64;
    const original = scene(W, H, { x: X, y: Y, side: L });
    const { image, faces } = await restoreFaces(models, { rgb: original, width: W, height: H }, 0);
    expect(faces).toBe(1);
    const s = 512 / L; // crop point of image pixel (x, y): (s·(x − X), s·(y − Y))
    let inside = 0, ramp = 0;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const m = featherWeight(s * (x - X), s * (y - Y), 512);
        for (let c = 0; c < 3; c++) {
          const i = (y * W + x) * 3 + c;
          const expected = Math.round(m * (255 - original[i]) + (1 - m) * original[i]);
          if (Math.abs(image.rgb[i] - expected) > 0) throw new Error(`pixel (${x}, ${y}) c${c}: ${image.rgb[i]} ≠ ${expected} (m ${m})`);
        }
        if (m === 1) inside++;
        else if (m > 0) ramp++;
        else expect([...image.rgb.subarray((y * W + x) * 3, (y * W + x) * 3 + 3)]).toEqual([...original.subarray((y * W + x) * 3, (y * W + x) * 3 + 3)]);
      }
    }
    // Weight 1 where d ≥ 51.2: image column X + k has q = 8k, d = min(8k + 0.5, 511.5 − 8k) → k = 7 … 57.
    expect(inside).toBe(51 * 51);
    expect(ramp).toBe(L * L - 51 * 51);
    // A pixel deep inside: exactly the inverted colour.
    const i = ((Y + 30) * W + X + 30) * 3;
    expect([...image.rgb.subarray(i, i + 3)]).toEqual([...original.subarray(i, i + 3)].map((v) => 255 - v));
    expect(original[i]).not.toBe(255 - original[i]);
  });

  it('no face → the same image, 0 faces', async () => {
    const models = { detector: { session: await open(buildTestFaceDetectorGraph()), sidecar: {} }, restorer: { session: await open(buildTestFaceRestorerGraph()), sidecar: {} } };
    const rgb = scene(40, 30);
    const out = await restoreFaces(models, { rgb, width: 40, height: 30 }, 0);
    expect(out.faces).toBe(0);
    expect(out.image.rgb).toEqual(scene(40, 30));
  });
});
