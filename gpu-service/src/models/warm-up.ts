/**
 * The warm-up run after a model loads: one text-encoder call, one UNet call at the model's native size
 * with both CFG halves (batch 2) and one VAE decode, so onnxruntime's first-run costs (memory arenas,
 * CUDA/cuDNN algorithm choice, TensorRT engine build for that shape) are paid before the first job.
 */
import { runUnet } from '../diffusion/unet-runner';
import { encodePromptPair } from '../diffusion/text-conditioning';
import { decodeLatents } from '../diffusion/vae';
import type { DiffusionModel } from './diffusion-model';
import { encodeFlowPrompt } from '../diffusion/flow-conditioning';
import { createFlowDenoiser } from '../diffusion/pipelines/flow-generate';

/**
 * Run the model once on zeros (results are discarded).
 * @throws the onnxruntime error when a graph cannot run (the model is then reported as broken).
 */
export async function warmUpModel(model: DiffusionModel): Promise<void> {
  if (model.flow) {
    // Flow transformers: both prompts' encoders, one guided transformer call (batch 2) and one decode.
    const h = Math.max(2, Math.floor(model.nativeSize[1] / 16) * 2);
    const w = Math.max(2, Math.floor(model.nativeSize[0] / 16) * 2);
    const cond = await encodeFlowPrompt(model, '');
    const denoise = createFlowDenoiser({ model, batch: 1, latentHeight: h, latentWidth: w, cond, uncond: cond, cfgScale: 2 });
    await denoise(new Float32Array(model.latentChannels * h * w), 0.5);
    await decodeLatents(model, new Float32Array(model.latentChannels * h * w), 1, h, w);
    return;
  }
  const { cond, uncond } = await encodePromptPair(model, '', '');
  const h = Math.max(8, Math.floor(model.nativeSize[1] / 8));
  const w = Math.max(8, Math.floor(model.nativeSize[0] / 8));
  const ehs = new Float32Array(2 * cond.tokens * model.hiddenSize);
  ehs.set(uncond.hidden, 0);
  ehs.set(cond.hidden, cond.hidden.length);
  // A mid-range sigma: any valid noise level exercises the same graph.
  const sigma = model.schedule.sigmas[Math.floor(model.schedule.sigmas.length / 2)];
  await runUnet(model, { sample: new Float32Array(2 * model.unetInChannels * h * w), batch: 2, sigma, encoderHiddenStates: ehs, tokens: cond.tokens }, h, w);
  await decodeLatents(model, new Float32Array(model.latentChannels * h * w), 1, h, w);
}
