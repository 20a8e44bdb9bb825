import { describe, expect, it } from 'vitest';
import { PhiloxGenerator } from '../../../gpu-service/src/diffusion/rng/philox';

/**
 * Values printed by ./philox-reference.py (AUTOMATIC1111's rng_philox.py algorithm under NumPy):
 * for each seed, draw `call` 0 then 1 of randn(4096) — first 8 values, last 4, float64 sum.
 */
const REFERENCE: { seed: number; call: number; first: number[]; last: number[]; sum: number }[] = [
  {"seed": 0, "call": 0, "first": [-0.9246624112129211, -0.42534396052360535, -2.643845796585083, 0.14518387615680695, -0.12086650729179382, -0.5797256827354431, -0.6228513121604919, -0.32838714122772217], "last": [0.402338445186615, 1.6039867401123047, -1.0724656581878662, 1.6008107662200928], "sum": -64.26806552463677},
  {"seed": 0, "call": 1, "first": [0.18082588911056519, -0.5522627234458923, 0.9238134026527405, -0.7349703311920166, 1.3799946308135986, 0.8676307201385498, 0.12965592741966248, -0.9406399726867676], "last": [-0.38174527883529663, -0.0053059798665344715, 2.119342803955078, 0.4635791778564453], "sum": -13.272128020762466},
  {"seed": 42, "call": 0, "first": [0.1940188705921173, 2.1613738536834717, -0.17205095291137695, 0.8490599989891052, -1.9243992567062378, 0.6529852747917175, -0.6494410634040833, -0.8175245523452759], "last": [-0.013707853853702545, 0.11244389414787292, 0.27694639563560486, -1.2535279989242554], "sum": 13.15693775707041},
  {"seed": 42, "call": 1, "first": [0.13913749158382416, -0.10821615904569626, -0.7174221873283386, 0.7566486597061157, 0.3714882433414459, -1.0049413442611694, 0.008294666185975075, 0.3276578485965729], "last": [-0.984085202217102, 1.8512166738510132, 1.4713760614395142, 1.1164684295654297], "sum": 18.824247394564736},
  {"seed": 4294967301, "call": 0, "first": [-2.842747449874878, 1.3404923677444458, 0.272230863571167, 1.4550628662109375, -0.7352960705757141, -0.5022603273391724, 0.5238111019134521, 0.17881092429161072], "last": [-1.3461989164352417, 1.2249292135238647, -0.1235196590423584, 0.7297025918960571], "sum": -45.97341282985872},
  {"seed": 4294967301, "call": 1, "first": [1.5295939445495605, -0.2153237760066986, 0.05125512555241585, 1.5882172584533691, -0.9465365409851074, 0.8454528450965881, 0.3696465790271759, 2.1071064472198486], "last": [-1.0120413303375244, 0.6447233557701111, -0.48058488965034485, -0.46290087699890137], "sum": -34.505039727067924},
  {"seed": 9007199254740991, "call": 0, "first": [-0.6003621816635132, 0.5458052158355713, 0.4668748378753662, 0.17487846314907074, -0.09574617445468903, 0.4039691686630249, 0.35610634088516235, 0.0726587101817131], "last": [1.544083595275879, -1.4052778482437134, 2.0362727642059326, 0.028586603701114655], "sum": 79.17355142810266},
  {"seed": 9007199254740991, "call": 1, "first": [1.4862090349197388, -2.1763837337493896, 1.367083191871643, 1.0611292123794556, 0.4037095904350281, -0.401841402053833, 0.24944230914115906, 0.30606937408447266], "last": [1.4370503425598145, -1.0326060056686401, 0.8054717183113098, -1.2602330446243286], "sum": 56.09309938468505},
];

describe('PhiloxGenerator (A1111 rng_philox port)', () => {
  it('reproduces the reference algorithm for every seed and call', () => {
    const generators = new Map<number, PhiloxGenerator>();
    for (const ref of REFERENCE) {
      if (ref.call === 0) generators.set(ref.seed, new PhiloxGenerator(ref.seed));
      const values = generators.get(ref.seed)!.randn(4096);
      expect(Array.from(values.subarray(0, 8))).toEqual(ref.first.map(Math.fround));
      expect(Array.from(values.subarray(4092))).toEqual(ref.last.map(Math.fround));
      let sum = 0;
      for (const v of values) sum += v;
      expect(Math.abs(sum - ref.sum)).toBeLessThan(1e-9);
    }
  });

  it('is counter based: a shorter draw is a prefix of a longer one at the same call index', () => {
    const long = new PhiloxGenerator(31337).randn(1000);
    const short = new PhiloxGenerator(31337).randn(10);
    expect(Array.from(short)).toEqual(Array.from(long.subarray(0, 10)));
  });

  it('uses the high seed bits as the second key word', () => {
    const a = new PhiloxGenerator(5).randn(16);
    const b = new PhiloxGenerator(5 + 2 ** 32).randn(16);
    expect(a).not.toEqual(b);
  });

  it('produces standard normal statistics', () => {
    const v = new PhiloxGenerator(77).randn(16384);
    let sum = 0;
    let sumsq = 0;
    for (const x of v) {
      sum += x;
      sumsq += x * x;
    }
    expect(Math.abs(sum / v.length)).toBeLessThan(0.035); // 4.5σ of the sample mean
    expect(Math.abs(sumsq / v.length - 1)).toBeLessThan(0.05);
  });

  it('rejects bad seeds and counts', () => {
    expect(() => new PhiloxGenerator(-1)).toThrow(RangeError);
    expect(() => new PhiloxGenerator(2 ** 53)).toThrow(RangeError);
    expect(() => new PhiloxGenerator(1).randn(2.5)).toThrow(RangeError);
  });
});
