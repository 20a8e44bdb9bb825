/**
 * Which weight of a built model a LoRA module patches. The engine's initializers are named by canonical
 * checkpoint keys (LDM names for the UNet, transformers names or OpenCLIP names for text encoders), and LoRA
 * files name their modules in several ways; every accepted spelling of every module is indexed (ComfyUI's
 * `comfy/lora.py` `model_lora_keys_unet` / `model_lora_keys_clip` do the same):
 * - UNet module M (LDM) with diffusers name D: `lora_unet_<M with _>`, `lora_unet_<D with _>`, `unet.<D>`,
 *   `diffusion_model.<M>`, `model.diffusion_model.<M>`;
 * - text encoder module T (transformers names, `text_model.encoder.layers.0.self_attn.q_proj`): `lora_te_<T with _>`
 *   (SDXL `lora_te1_` / `lora_te2_`), `text_encoder.<T>` (SDXL `text_encoder_2.` for the second);
 * - an OpenCLIP-layout text encoder (SD 2.x, SDXL bigG single files) is indexed under the transformers names LoRA
 *   trainers use, each pointing at its rows of the fused `attn.in_proj_weight` (q, k, v) or at `out_proj`,
 *   `mlp.c_fc`, `mlp.c_proj`.
 */
import { ldmUnetToDiffusers } from '../checkpoints/key-maps/diffusers-unet';
import type { ExternalTensor } from '../onnx/external-layout';

/** The weight one LoRA module patches. */
export interface PatchTarget {
  /** The graph's folder in the model (`unet`, `text_encoder`, `text_encoder_2`). */
  graph: string;
  /** Initializer name (the weight's canonical checkpoint key). */
  initializer: string;
  /** Rows of the initializer that are this module's weight (OpenCLIP's fused q/k/v), else the whole tensor. */
  rows?: [number, number];
  /** The module weight's shape (PyTorch layout; the rows slice applied). */
  shape: number[];
}

/** One graph of a model, for indexing: its folder, role and initializers. */
export interface IndexedGraph {
  graph: string;
  kind: 'unet' | 'text_encoder';
  /** Text encoders: 1 (CLIP-L / the only one) or 2 (SDXL's second). */
  textEncoderIndex?: 1 | 2;
  /** Whether the model has two text encoders (SDXL: kohya prefixes `lora_te1_` / `lora_te2_`). */
  dualTextEncoders?: boolean;
  initializers: ReadonlyMap<string, Pick<ExternalTensor, 'dims'>>;
}

const underscored = (s: string) => s.replace(/\./g, '_');

function unetAliases(index: Map<string, PatchTarget>, g: IndexedGraph): void {
  const names = [...g.initializers.keys()];
  const toDiffusers = ldmUnetToDiffusers(names);
  for (const [name, t] of g.initializers) {
    if (!name.endsWith('.weight')) continue;
    const m = name.slice(0, -'.weight'.length);
    const target: PatchTarget = { graph: g.graph, initializer: name, shape: t.dims };
    const d = toDiffusers(m);
    const aliases = [`lora_unet_${underscored(m)}`, `diffusion_model.${m}`, `model.diffusion_model.${m}`];
    if (d) aliases.push(`lora_unet_${underscored(d)}`, `unet.${d}`);
    for (const a of aliases) index.set(a, target);
  }
}

function textAliases(index: Map<string, PatchTarget>, g: IndexedGraph): void {
  const kohya = g.dualTextEncoders ? [`lora_te${g.textEncoderIndex}_`] : ['lora_te_', 'lora_te1_'];
  const peft = g.textEncoderIndex === 2 ? ['text_encoder_2.'] : ['text_encoder.'];
  const add = (module: string, target: PatchTarget) => {
    for (const p of kohya) index.set(p + underscored(module), target);
    for (const p of peft) {
      index.set(p + module, target);
      // Some PEFT files leave out transformers' `text_model.` wrapper.
      if (module.startsWith('text_model.')) index.set(p + module.slice('text_model.'.length), target);
    }
  };
  const openClip = [...g.initializers.keys()].some((n) => n.startsWith('transformer.resblocks.'));
  if (!openClip) {
    for (const [name, t] of g.initializers) if (name.endsWith('.weight')) add(name.slice(0, -'.weight'.length), { graph: g.graph, initializer: name, shape: t.dims });
    return;
  }
  for (const [name, t] of g.initializers) {
    const m = /^transformer\.resblocks\.(\d+)\.(.+)$/.exec(name);
    if (!m) continue;
    const layer = `text_model.encoder.layers.${m[1]}`;
    if (m[2] === 'attn.in_proj_weight') {
      const c = t.dims[0] / 3;
      ['q_proj', 'k_proj', 'v_proj'].forEach((p, i) => add(`${layer}.self_attn.${p}`, { graph: g.graph, initializer: name, rows: [i * c, (i + 1) * c], shape: [c, t.dims[1]] }));
    }
    const simple: Record<string, string> = { 'attn.out_proj.weight': 'self_attn.out_proj', 'mlp.c_fc.weight': 'mlp.fc1', 'mlp.c_proj.weight': 'mlp.fc2' };
    if (simple[m[2]]) add(`${layer}.${simple[m[2]]}`, { graph: g.graph, initializer: name, shape: t.dims });
  }
}

/** Every accepted LoRA module name of a model → the weight it patches. */
export function loraTargetIndex(graphs: readonly IndexedGraph[]): Map<string, PatchTarget> {
  const index = new Map<string, PatchTarget>();
  for (const g of graphs) {
    if (g.kind === 'unet') unetAliases(index, g);
    else textAliases(index, g);
  }
  return index;
}
