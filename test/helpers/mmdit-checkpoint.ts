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
