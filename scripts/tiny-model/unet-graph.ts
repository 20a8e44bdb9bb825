/**
 * unet/model.onnx of the tiny model: the exact posterior-mean denoiser of Gaussian latents
 * (maths and its derivation: closed-form.ts).
 *
 * Inputs:  sample                float [batch, 4 | 9, h, w]   (9 = inpainting: latents, mask, masked-image latents)
 *          timestep              int64 or float [steps]       (steps = 1 or batch; as Optimum SD exports)
 *          encoder_hidden_states float [batch, sequence, H]
 * Output:  out_sample            float [batch, 4, h, w]       ε̂, or v̂ for v_prediction
 * "float" is float32, or float16 for a float16 model (computed in float32 inside).
 *
 * Evaluated through σ for accuracy: t is clamped to [0, 999], log σ interpolated between ⌊t⌋ and
 * ⌈t⌉ in the float32 log-σ table (an integer t hits the table entry, i.e. ᾱ_t itself), and with
 * r = sqrt(1 + σ²) (so √ᾱ = 1/r, √(1 − ᾱ) = σ/r) the posterior mean and outputs become
 *     x0̂ = mu + s²/(s² + σ²)·(r·x − mu) + (S²/(S² + σ²) − s²/(s² + σ²))·mean_hw(r·x − mu),
 *     ε̂ = (r·x − x0̂)/σ,   v̂ = (ε̂ − σ·x0̂)/r,
 * with S = TINY_MEAN_STD the spread of each channel's spatial mean (not in the inpainting variant),
 * algebraically identical to the ᾱ form of closed-form.ts but free of the 1 − ᾱ cancellation.
 */
import { ELEM, OnnxGraphBuilder } from './onnx-graph-builder';
import { TINY_COLOUR_DIMS, TINY_DATA_STD, TINY_HIDDEN_SIZE, TINY_KEEP_STD, TINY_MEAN_STD } from './constants';
import { TINY_READOUT_OUTPUTS, tinyReadoutMatrix } from './embedding-table';
import { tinySigmas } from './schedule';
import { tinyGreyLatent } from './vae-maps';
import type { TinyPredictionType } from './closed-form';

/** Options of `buildUnetGraph`. */
export interface UnetGraphOptions {
  timestepType: 'float32' | 'int64';
  predictionType: TinyPredictionType;
  inpainting: boolean;
  float16: boolean;
}

/** Builds the UNet graph (see the module docstring). */
export function buildUnetGraph(options: UnetGraphOptions): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder('tiny_unet', { float16: options.float16 });
  const channels = options.inpainting ? 9 : 4;
  const sample = g.floatInput('sample', ['batch', channels, 'height', 'width']);
  const timestepElem = options.timestepType === 'int64' ? ELEM.INT64 : g.floatType;
  const timestep = g.input('timestep', timestepElem, ['steps']);
  const hidden = g.floatInput('encoder_hidden_states', ['batch', 'sequence', TINY_HIDDEN_SIZE]);

  const one = g.floatConstant('one', [], [1]);
  const zero = g.floatConstant('zero', [], [0]);
  const axis1 = g.int64Constant('axis_1', [1], [1]);

  // mu [batch, 4, 1, 1] from the summed hidden states and the readout (closed-form.ts tinyMu).
  const summed = g.node('ReduceSum', [hidden, axis1], { keepdims: 0 });
  const readout = g.node('MatMul', [summed, g.floatConstant('readout', [TINY_HIDDEN_SIZE, TINY_READOUT_OUTPUTS], tinyReadoutMatrix())]);
  const colourSum = g.node('Slice', [readout, g.int64Constant('colour_start', [1], [0]), g.int64Constant('colour_end', [1], [TINY_COLOUR_DIMS]), axis1]);
  const count = g.node('Slice', [readout, g.int64Constant('count_start', [1], [TINY_COLOUR_DIMS]), g.int64Constant('count_end', [1], [TINY_COLOUR_DIMS + 1]), axis1]);
  const greyWeight = g.node('Relu', [g.node('Sub', [one, count])]);
  const numerator = g.node('Add', [colourSum, g.node('Mul', [greyWeight, g.floatConstant('grey_latent', [1, TINY_COLOUR_DIMS], tinyGreyLatent())])]);
  const muFlat = g.node('Div', [numerator, g.node('Max', [count, one])]);
  let mu = g.node('Unsqueeze', [muFlat, g.int64Constant('hw_axes', [2], [2, 3])]);

  // sigma [steps, 1, 1, 1] from the timestep by log-sigma interpolation.
  const tFloat = g.node('Cast', [timestep], { to: ELEM.FLOAT });
  const tClamped = g.node('Clip', [tFloat, zero, g.floatConstant('t_max', [], [999])]);
  const tLo = g.node('Floor', [tClamped]);
  const tHi = g.node('Ceil', [tClamped]);
  const w = g.node('Sub', [tClamped, tLo]);
  const logSigmaTable = g.floatConstant('log_sigmas', [1000], Array.from(tinySigmas(), (s) => Math.log(s)));
  const lsLo = g.node('Gather', [logSigmaTable, g.node('Cast', [tLo], { to: ELEM.INT64 })], { axis: 0 });
  const lsHi = g.node('Gather', [logSigmaTable, g.node('Cast', [tHi], { to: ELEM.INT64 })], { axis: 0 });
  const logSigma = g.node('Add', [lsLo, g.node('Mul', [w, g.node('Sub', [lsHi, lsLo])])]);
  const sigma = g.node('Reshape', [g.node('Exp', [logSigma]), g.int64Constant('sigma_shape', [4], [-1, 1, 1, 1])]);
  const sigma2 = g.node('Mul', [sigma, sigma]);
  const r = g.node('Sqrt', [g.node('Add', [one, sigma2])]);

  // Data mean and variance (per pixel for inpainting, see closed-form.ts tinyUnetOutput).
  let x = sample;
  let variance: string;
  if (!options.inpainting) {
    variance = g.floatConstant('data_variance', [], [TINY_DATA_STD ** 2]);
  } else {
    const slice = (name: string, start: number, end: number) =>
      g.node('Slice', [sample, g.int64Constant(`${name}_start`, [1], [start]), g.int64Constant(`${name}_end`, [1], [end]), axis1]);
    x = slice('latents', 0, 4);
    const mask = g.node('Clip', [slice('mask', 4, 5), zero, one]);
    const known = slice('masked_image_latents', 5, 9);
    mu = g.node('Add', [known, g.node('Mul', [mask, g.node('Sub', [mu, known])])]);
    const keep = g.floatConstant('keep_variance', [], [TINY_KEEP_STD ** 2]);
    const spread = g.floatConstant('variance_spread', [], [TINY_DATA_STD ** 2 - TINY_KEEP_STD ** 2]);
    variance = g.node('Add', [keep, g.node('Mul', [mask, spread])]);
  }

  const shrink = g.node('Div', [variance, g.node('Add', [variance, sigma2])]);
  const rx = g.node('Mul', [r, x]);
  const offset = g.node('Sub', [rx, mu]);
  let x0 = g.node('Add', [mu, g.node('Mul', [shrink, offset])]);
  if (!options.inpainting) {
    // The image's mean colour has the wide spread TINY_MEAN_STD: its part of the offset shrinks by
    // meanShrink instead of shrink (closed-form.ts tinyUnetOutput).
    const meanVariance = g.floatConstant('mean_variance', [], [TINY_MEAN_STD ** 2]);
    const meanShrink = g.node('Div', [meanVariance, g.node('Add', [meanVariance, sigma2])]);
    const meanOffset = g.node('ReduceMean', [offset], { axes: [2, 3], keepdims: 1 }); // opset 13: axes is an attribute
    x0 = g.node('Add', [x0, g.node('Mul', [g.node('Sub', [meanShrink, shrink]), meanOffset])]);
  }
  const eps = g.node('Div', [g.node('Sub', [rx, x0]), sigma]);
  const out = options.predictionType === 'epsilon' ? eps : g.node('Div', [g.node('Sub', [eps, g.node('Mul', [sigma, x0])]), r]);
  g.floatOutput('out_sample', out, ['batch', 4, 'height', 'width']);
  return g;
}
