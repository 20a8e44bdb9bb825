/**
 * What the engine decides before building anything: the family from key prefixes, sidecar configs (JSON and
 * A1111 yaml, in that order), and SD 2.x's v-prediction heuristic for files without a config.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectFamily, UnknownArchitectureError } from '../../gpu-service/src/checkpoints/detect/family';
import { sd2IsVPrediction } from '../../gpu-service/src/checkpoints/conventions';
import { readSidecar, SidecarError } from '../../gpu-service/src/checkpoints/sidecar';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { writeSafetensors } from '../../gpu-service/src/weights/safetensors-writer';
import { WeightSet } from '../../gpu-service/src/weights/weight-set';

let dir: string;
const opened: Array<{ close(): Promise<void> }> = [];
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'detection-'));
});
afterAll(async () => {
  await Promise.all(opened.map((f) => f.close()));
  await rm(dir, { recursive: true, force: true });
});

const unet = ['model.diffusion_model.input_blocks.0.0.weight', 'model.diffusion_model.out.2.weight'];
const vae = ['first_stage_model.decoder.conv_in.weight'];

describe('family detection from key prefixes', () => {
  it('tells SD 1.x, SD 2.x (both layouts), SDXL base and refiner, FLUX and SD3 apart', () => {
    expect(detectFamily([...unet, ...vae, 'cond_stage_model.transformer.text_model.embeddings.token_embedding.weight'])).toMatchObject({
      family: 'sd1',
      unetPrefix: 'model.diffusion_model.',
      vaePrefix: 'first_stage_model.',
      textEncoders: [{ prefix: 'cond_stage_model.transformer.', layout: 'transformers', role: 'clip_l' }],
      unetOnly: false,
    });
    expect(detectFamily([...unet, ...vae, 'cond_stage_model.model.token_embedding.weight']).family).toBe('sd2');
    expect(detectFamily([...unet, ...vae, 'conditioner.embedders.0.model.token_embedding.weight']).family).toBe('sd2');
    const xl = detectFamily([...unet, 'model.diffusion_model.label_emb.0.0.weight', ...vae, 'conditioner.embedders.0.transformer.text_model.x', 'conditioner.embedders.1.model.token_embedding.weight']);
    expect(xl.family).toBe('sdxl');
    expect(xl.textEncoders.map((t) => t.role)).toEqual(['clip_l', 'clip_g']);
    expect(detectFamily([...unet, 'model.diffusion_model.label_emb.0.0.weight', ...vae, 'conditioner.embedders.0.model.token_embedding.weight']).family).toBe('sdxl-refiner');
    expect(detectFamily(['double_blocks.0.img_attn.qkv.weight']).family).toBe('flux');
    expect(detectFamily(['model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight']).family).toBe('sd3');
  });

  it('finds the encoders a FLUX.1 / SD 3.x file carries under text_encoders.* (ComfyUI / Stability prefixes)', () => {
    const clipL = 'text_encoders.clip_l.transformer.text_model.final_layer_norm.weight';
    const clipG = 'text_encoders.clip_g.transformer.text_model.final_layer_norm.weight';
    const t5 = 'text_encoders.t5xxl.transformer.shared.weight';
    const mmdit = 'model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight';
    expect(detectFamily([mmdit, ...vae, clipL, clipG, t5])).toEqual({
      family: 'sd3',
      unetPrefix: 'model.diffusion_model.',
      vaePrefix: 'first_stage_model.',
      textEncoders: [
        { prefix: 'text_encoders.clip_l.transformer.', layout: 'transformers', role: 'clip_l' },
        { prefix: 'text_encoders.clip_g.transformer.', layout: 'transformers', role: 'clip_g' },
      ],
      t5Prefix: 'text_encoders.t5xxl.transformer.',
      unetOnly: false,
    });
    // sd3_medium_incl_clips: no T5; encoders without a VAE are not "UNet only" (the base supplies the VAE).
    expect(detectFamily([mmdit, ...vae, clipL, clipG])).toMatchObject({ textEncoders: [{ role: 'clip_l' }, { role: 'clip_g' }], unetOnly: false });
    expect(detectFamily([mmdit, ...vae, clipL, clipG]).t5Prefix).toBeUndefined();
    expect(detectFamily([mmdit, t5])).toMatchObject({ vaePrefix: undefined, textEncoders: [], t5Prefix: 'text_encoders.t5xxl.transformer.', unetOnly: false });
    expect(detectFamily([mmdit, ...vae])).toMatchObject({ textEncoders: [], unetOnly: false });
    expect(detectFamily([mmdit])).toMatchObject({ unetOnly: true });
    // ComfyUI's all-in-one FLUX: VAE under vae.*, CLIP-L + T5.
    expect(detectFamily(['model.diffusion_model.double_blocks.0.img_attn.qkv.weight', 'vae.decoder.conv_in.weight', clipL, t5, 'text_encoders.clip_l.logit_scale'])).toMatchObject({
      family: 'flux',
      vaePrefix: 'vae.',
      textEncoders: [{ prefix: 'text_encoders.clip_l.transformer.', role: 'clip_l' }],
      t5Prefix: 'text_encoders.t5xxl.transformer.',
      unetOnly: false,
    });
    // FLUX.1 has no CLIP-G; tensors under a prefix the family lacks are refused by name.
    expect(() => detectFamily(['double_blocks.0.img_attn.qkv.weight', 'vae.decoder.conv_in.weight', clipG])).toThrow(/"text_encoders\.clip_g\.transformer\.text_model\.final_layer_norm\.weight" is under no text-encoder prefix a FLUX\.1 file has/);
    expect(() => detectFamily([mmdit, 'text_encoders.t5xxl.encoder.final_layer_norm.weight'])).toThrow(UnknownArchitectureError);
  });

  it('a UNet alone is unetOnly; its context width tells SD 2.x from SD 1.x', () => {
    const keys = ['input_blocks.0.0.weight', 'input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight'];
    expect(detectFamily(keys, () => [320, 1024])).toMatchObject({ family: 'sd2', unetPrefix: '', unetOnly: true });
    expect(detectFamily(keys, () => [320, 768])).toMatchObject({ family: 'sd1', unetOnly: true });
  });

  it('names what a non-checkpoint file is', () => {
    expect(() => detectFamily(['lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight'])).toThrow(/this is a LoRA/);
    expect(() => detectFamily(['encoder.conv_in.weight', 'decoder.conv_in.weight'])).toThrow(/standalone VAE/);
    expect(() => detectFamily(['bert.embeddings.word_embeddings.weight'])).toThrow(UnknownArchitectureError);
  });
});

describe('sidecars', () => {
  it('reads a JSON sidecar of diffusers component configs and refuses malformed ones', async () => {
    const file = path.join(dir, 'a.safetensors');
    await writeFile(path.join(dir, 'a.json'), JSON.stringify({ unet: { attention_head_dim: 8 }, scheduler: { prediction_type: 'v_prediction' }, base: 'sd1.5/base.safetensors' }));
    expect((await readSidecar(file))?.configs).toEqual({ unet: { attention_head_dim: 8 }, scheduler: { prediction_type: 'v_prediction' }, base: 'sd1.5/base.safetensors' });
    await writeFile(path.join(dir, 'a.json'), JSON.stringify({ unet: 8 }));
    await expect(readSidecar(file)).rejects.toThrow(SidecarError);
    await expect(readSidecar(file)).rejects.toThrow(/"unet" must be an object/);
    expect(await readSidecar(path.join(dir, 'none.safetensors'))).toBeUndefined();
  });

  it("translates A1111's LDM yaml (v2-inference-v.yaml) and prefers a JSON sidecar when both exist", async () => {
    const yaml = `model:
  base_learning_rate: 1.0e-4
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
    parameterization: "v"
    linear_start: 0.00085
    linear_end: 0.0120
    timesteps: 1000
    scale_factor: 0.18215
    unet_config:
      target: ldm.modules.diffusionmodules.openaimodel.UNetModel
      params:
        num_head_channels: 64
        use_linear_in_transformer: True
        context_dim: 1024
    cond_stage_config:
      target: ldm.modules.encoders.modules.FrozenOpenCLIPEmbedder
      params:
        freeze: True
        layer: "penultimate"
`;
    const file = path.join(dir, 'v.safetensors');
    await writeFile(path.join(dir, 'v.yaml'), yaml);
    expect((await readSidecar(file))?.configs).toEqual({
      unet: { num_head_channels: 64, use_linear_projection: true },
      vae: { scaling_factor: 0.18215 },
      text_encoder: { clip_layer: 'penultimate' },
      scheduler: { prediction_type: 'v_prediction', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000, beta_schedule: 'scaled_linear' },
    });
    await writeFile(path.join(dir, 'v.json'), JSON.stringify({ scheduler: { prediction_type: 'epsilon' } }));
    expect((await readSidecar(file))?.configs).toEqual({ scheduler: { prediction_type: 'epsilon' } });
    await writeFile(path.join(dir, 'bad.yaml'), 'model: [unclosed');
    await expect(readSidecar(path.join(dir, 'bad.safetensors'))).rejects.toThrow(/not valid YAML/);
  });
});

describe('SD 2.x v-prediction heuristic (ComfyUI supported_models.SD20)', () => {
  async function unetWithBiasStd(std: number, inChannels = 4): Promise<WeightSet> {
    const file = path.join(dir, `heuristic-${std}-${inChannels}.safetensors`);
    const bias = Array.from({ length: 64 }, (_, i) => (i % 2 ? std : -std));
    await writeSafetensors(file, [
      { key: 'input_blocks.0.0.weight', dtype: 'F32', shape: [8, inChannels, 1, 1], values: () => new Float32Array(8 * inChannels) },
      { key: 'output_blocks.11.1.transformer_blocks.0.norm1.bias', dtype: 'F32', shape: [64], values: () => bias },
    ]);
    const f = await openSafetensors(file);
    opened.push(f);
    return WeightSet.fromFile(f);
  }

  it('std of the last output transformer norm1 bias above 0.09 is v-prediction; inpainting UNets are epsilon', async () => {
    expect(await sd2IsVPrediction(await unetWithBiasStd(0.2))).toBe(true);
    expect(await sd2IsVPrediction(await unetWithBiasStd(0.05))).toBe(false);
    expect(await sd2IsVPrediction(await unetWithBiasStd(0.2, 9))).toBe(false);
  });
});
