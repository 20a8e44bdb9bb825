/**
 * Random-weight SD3 MMDiT tensors of any configuration under the original single-file names (ComfyUI mmdit.py's
 * module layout: the last joint block's context stream pre-only, `x_block.attn2` in the dual-attention layers,
 * `ln_q` / `ln_k` with QK-norm). Tests write them with writeSafetensors to check detection and graph building on
 * configurations the fixtures do not have.
 */
import type { TensorToWrite } from '../../gpu-service/src/weights/safetensors-writer';
import { createMulberry32 } from '../../scripts/tiny-model/prng';

export interface MmditSpec {
  patchSize: number;
  inChannels: number;
  outChannels: number;
  hiddenSize: number;
  depth: number;
  posEmbedMaxSize: number;
  contextDim: number;
  pooledDim: number;
  mlpRatio: number;
  /** Head width of the ln_q / ln_k weights; undefined = no QK-norm (SD3 Medium). */
  qkNormHeadDim?: number;
  dualAttentionLayers: number[];
}

/** The tensors of `spec` under `prefix`, F32, deterministic for `seed`. */
export function mmditTensors(spec: MmditSpec, prefix = 'model.diffusion_model.', seed = 1): TensorToWrite[] {
  const rand = createMulberry32(seed);
  const out: TensorToWrite[] = [];
  const C = spec.hiddenSize;
  const tensor = (key: string, shape: number[], kind: 'weight' | 'bias' | 'norm' = 'weight') => {
    const fanIn = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    const n = shape.reduce((a, b) => a * b, 1);
    out.push({
      key: prefix + key,
      dtype: 'F32',
      shape,
      values: () => {
        const v = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          const u = rand() * 2 - 1;
          v[i] = kind === 'norm' ? 1 + 0.1 * u : kind === 'bias' ? 0.05 * u : u / Math.sqrt(fanIn);
        }
        return v;
      },
    });
  };
  const linear = (name: string, outF: number, inF: number) => {
    tensor(`${name}.weight`, [outF, inF]);
    tensor(`${name}.bias`, [outF], 'bias');
  };
  const attention = (name: string, preOnly: boolean) => {
    linear(`${name}.qkv`, 3 * C, C);
    if (spec.qkNormHeadDim !== undefined) {
      tensor(`${name}.ln_q.weight`, [spec.qkNormHeadDim], 'norm');
      tensor(`${name}.ln_k.weight`, [spec.qkNormHeadDim], 'norm');
    }
    if (!preOnly) linear(`${name}.proj`, C, C);
  };
  const mlp = (name: string) => {
    linear(`${name}.fc1`, spec.mlpRatio * C, C);
    linear(`${name}.fc2`, C, spec.mlpRatio * C);
  };

  tensor('pos_embed', [1, spec.posEmbedMaxSize ** 2, C], 'bias');
  tensor('x_embedder.proj.weight', [C, spec.inChannels, spec.patchSize, spec.patchSize]);
  tensor('x_embedder.proj.bias', [C], 'bias');
  linear('t_embedder.mlp.0', C, 256);
  linear('t_embedder.mlp.2', C, C);
  linear('y_embedder.mlp.0', C, spec.pooledDim);
  linear('y_embedder.mlp.2', C, C);
  linear('context_embedder', C, spec.contextDim);
  for (let i = 0; i < spec.depth; i++) {
    const preOnly = i === spec.depth - 1;
    const dual = spec.dualAttentionLayers.includes(i);
    const b = `joint_blocks.${i}`;
    linear(`${b}.context_block.adaLN_modulation.1`, (preOnly ? 2 : 6) * C, C);
    attention(`${b}.context_block.attn`, preOnly);
    if (!preOnly) mlp(`${b}.context_block.mlp`);
    linear(`${b}.x_block.adaLN_modulation.1`, (dual ? 9 : 6) * C, C);
    attention(`${b}.x_block.attn`, false);
    if (dual) attention(`${b}.x_block.attn2`, false);
    mlp(`${b}.x_block.mlp`);
  }
  linear('final_layer.adaLN_modulation.1', 2 * C, C);
  linear('final_layer.linear', spec.patchSize ** 2 * spec.outChannels, C);
  return out;
}

/**
 * The same weights in the diffusers SD3Transformer2DModel layout, converted the way upstream diffusers'
 * `convert_sd3_transformer_checkpoint_to_diffusers` (loaders/single_file_utils.py) converts an original file:
 * qkv chunked in three, the last block's context modulation and the final modulation's halves swapped.
 * @param original tensors under `prefix` (as mmditTensors writes them); their values are produced once here.
 * @returns both layouts over the same values (write `original` too: its values are drawn only once).
 */
export function diffusersSd3Tensors(original: TensorToWrite[], prefix = 'model.diffusion_model.'): { original: TensorToWrite[]; diffusers: TensorToWrite[] } {
  const values = new Map(original.map((t) => [t.key.slice(prefix.length), Float32Array.from(t.values())]));
  const shapes = new Map(original.map((t) => [t.key.slice(prefix.length), [...t.shape]]));
  const diffusers: TensorToWrite[] = [];
  const put = (key: string, shape: number[], data: Float32Array) => diffusers.push({ key, dtype: 'F32', shape, values: () => data });
  const copy = (from: string, to: string) => {
    for (const s of ['weight', 'bias']) if (values.has(`${from}.${s}`)) put(`${to}.${s}`, shapes.get(`${from}.${s}`)!, values.get(`${from}.${s}`)!);
  };
  const chunk3 = (from: string, to: [string, string, string]) => {
    for (const s of ['weight', 'bias']) {
      const v = values.get(`${from}.${s}`)!;
      const shape = shapes.get(`${from}.${s}`)!;
      const n = v.length / 3;
      to.forEach((t, i) => put(`${t}.${s}`, [shape[0] / 3, ...shape.slice(1)], v.slice(i * n, (i + 1) * n)));
    }
  };
  const swapScaleShift = (from: string, to: string) => {
    for (const s of ['weight', 'bias']) {
      const v = values.get(`${from}.${s}`)!;
      const half = v.length / 2;
      const out = new Float32Array(v.length);
      out.set(v.subarray(half), 0);
      out.set(v.subarray(0, half), half);
      put(`${to}.${s}`, shapes.get(`${from}.${s}`)!, out);
    }
  };
  put('pos_embed.pos_embed', shapes.get('pos_embed')!, values.get('pos_embed')!);
  copy('x_embedder.proj', 'pos_embed.proj');
  copy('t_embedder.mlp.0', 'time_text_embed.timestep_embedder.linear_1');
  copy('t_embedder.mlp.2', 'time_text_embed.timestep_embedder.linear_2');
  copy('context_embedder', 'context_embedder');
  copy('y_embedder.mlp.0', 'time_text_embed.text_embedder.linear_1');
  copy('y_embedder.mlp.2', 'time_text_embed.text_embedder.linear_2');
  const depth = Math.max(...[...values.keys()].filter((k) => k.startsWith('joint_blocks.')).map((k) => Number(k.split('.')[1]))) + 1;
  for (let i = 0; i < depth; i++) {
    const [o, d] = [`joint_blocks.${i}`, `transformer_blocks.${i}`];
    const last = i === depth - 1;
    chunk3(`${o}.x_block.attn.qkv`, [`${d}.attn.to_q`, `${d}.attn.to_k`, `${d}.attn.to_v`]);
    chunk3(`${o}.context_block.attn.qkv`, [`${d}.attn.add_q_proj`, `${d}.attn.add_k_proj`, `${d}.attn.add_v_proj`]);
    if (values.has(`${o}.x_block.attn.ln_q.weight`)) {
      copy(`${o}.x_block.attn.ln_q`, `${d}.attn.norm_q`);
      copy(`${o}.x_block.attn.ln_k`, `${d}.attn.norm_k`);
      copy(`${o}.context_block.attn.ln_q`, `${d}.attn.norm_added_q`);
      copy(`${o}.context_block.attn.ln_k`, `${d}.attn.norm_added_k`);
    }
    copy(`${o}.x_block.attn.proj`, `${d}.attn.to_out.0`);
    if (!last) copy(`${o}.context_block.attn.proj`, `${d}.attn.to_add_out`);
    if (values.has(`${o}.x_block.attn2.qkv.weight`)) {
      chunk3(`${o}.x_block.attn2.qkv`, [`${d}.attn2.to_q`, `${d}.attn2.to_k`, `${d}.attn2.to_v`]);
      if (values.has(`${o}.x_block.attn2.ln_q.weight`)) {
        copy(`${o}.x_block.attn2.ln_q`, `${d}.attn2.norm_q`);
        copy(`${o}.x_block.attn2.ln_k`, `${d}.attn2.norm_k`);
      }
      copy(`${o}.x_block.attn2.proj`, `${d}.attn2.to_out.0`);
    }
    copy(`${o}.x_block.adaLN_modulation.1`, `${d}.norm1.linear`);
    if (last) swapScaleShift(`${o}.context_block.adaLN_modulation.1`, `${d}.norm1_context.linear`);
    else copy(`${o}.context_block.adaLN_modulation.1`, `${d}.norm1_context.linear`);
    copy(`${o}.x_block.mlp.fc1`, `${d}.ff.net.0.proj`);
    copy(`${o}.x_block.mlp.fc2`, `${d}.ff.net.2`);
    if (!last) {
      copy(`${o}.context_block.mlp.fc1`, `${d}.ff_context.net.0.proj`);
      copy(`${o}.context_block.mlp.fc2`, `${d}.ff_context.net.2`);
    }
  }
  copy('final_layer.linear', 'proj_out');
  swapScaleShift('final_layer.adaLN_modulation.1', 'norm_out.linear');
  return { original: original.map((t) => ({ ...t, values: () => values.get(t.key.slice(prefix.length))! })), diffusers };
}
