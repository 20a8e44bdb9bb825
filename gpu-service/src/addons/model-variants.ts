/**
 * Model variants: an engine-built model with a set of add-ons applied — LoRAs on the UNet and text encoder, a
 * standalone VAE's sessions in place of the checkpoint's, textual-inversion vectors for the prompts. One variant per
 * (model, add-on set), built on first use and cached: jobs with the same set reuse it (and batch together); jobs
 * with different sets never share one.
 *
 * LoRA: plain LoRA / LoCon sets are factor feeds bound to one session per model whose every Linear and Conv has a
 * low-rank side branch (lora-branches.ts): the first set of a model opens that session (on the CPU provider its
 * graphs are optimized and saved in the conversion-cache entry once per host), every other set costs only reading
 * and stacking its factors. Sets with LoHa / LoKr modules get patched sessions instead (patched-graphs.ts: new
 * sessions over the same graphs, weights from memory, the base weights read from disk once per model and kept).
 * Idle variants are dropped least recently used first when ADDON_MEMORY_BUDGET would be exceeded (a branched
 * variant holds only its factors; the shared branched session lives until the model is dropped).
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { GenerationParams } from '@image-api/shared/generation-job';
import { convertStandaloneVae, type CheckpointEngineOptions } from '../checkpoints/checkpoint-engine';
import { textualInversionTable } from '../diffusion/text-conditioning';
import { ServiceError } from '../lib/errors';
import type { DiffusionModel } from '../models/diffusion-model';
import { OnnxModel, type SessionOptions } from '../onnx/session';
import { openSafetensors } from '../weights/safetensors';
import { EmbeddingFormatError, readEmbeddingFile, vectorsFor } from './embedding-file';
import { addonsKey, hasAddons, type ResolvedAddons } from './job-addons';
import { LoraFormatError, parseLoraFile } from './lora-file';
import { LoraMismatchError, loraPatches } from './lora-patch';
import { loraTargetIndex, type IndexedGraph } from './lora-targets';
import { loraBranchFeeds, openBranchedGraphs, type BranchedGraph } from './lora-branches';
import { loadBaseGraph, openPatchedGraph, type BaseGraph } from './patched-graphs';
import type { ExternalTensor } from '../onnx/external-layout';

/** A variant held by a job; release() when the job ends. */
export interface VariantLease {
  model: DiffusionModel;
  release(): void;
}

interface Variant {
  key: string;
  baseDir: string;
  loading: Promise<{ model: DiffusionModel; bytes: number }>;
  refs: number;
  lastUsed: number;
  bytes: number;
}

/** Base graphs in memory, per model folder. */
interface BaseWeights {
  graphs: Promise<{ unet: BaseGraph; text: BaseGraph; text2?: BaseGraph }>;
  bytes: number;
}

export interface ModelVariantsOptions {
  engine: CheckpointEngineOptions;
  sessionOptions: SessionOptions;
  /** Bytes of patched weights and base weights kept in memory (0 = no limit). */
  budgetBytes?: number;
  /**
   * Apply plain LoRA / LoCon sets as factor feeds of one branched session per model (lora-branches.ts; default
   * true). False: every set gets patched sessions (patched-graphs.ts), as before; the benchmark compares the two.
   */
  loraBranches?: boolean;
  /** Build and drop events; a LoRA variant says whether it is branches of the model's shared session or patched sessions. */
  onEvent?: (e: { type: 'variant_built'; model: string; key: string; seconds: number; bytes: number; lora?: 'branches' | 'patched' } | { type: 'variant_dropped'; model: string; key: string; bytes: number }) => void;
}

export class ModelVariants {
  private readonly variants = new Map<string, Variant>();
  private readonly bases = new Map<string, BaseWeights>();
  /** LoRA-branched sessions, per model folder. */
  private readonly branched = new Map<string, Promise<Map<string, BranchedGraph> | undefined>>();

  constructor(private readonly opts: ModelVariantsOptions) {}

  /** Bytes held now (variants and base weights). */
  get bytes(): number {
    let n = 0;
    for (const v of this.variants.values()) n += v.bytes;
    for (const b of this.bases.values()) n += b.bytes;
    return n;
  }

  /**
   * The variant of `base` with `addons` (base itself, unleased, when there are none).
   * @throws ServiceError 400 naming the add-on's field when it does not fit the model (another architecture, a
   *         LoRA matching nothing, an embedding of another width) or the model is not engine-built.
   */
  async acquire(base: DiffusionModel, addons: ResolvedAddons): Promise<VariantLease> {
    if (!hasAddons(addons)) return { model: base, release: () => undefined };
    if (base.flow) {
      const param = addons.loras[0]?.param ?? addons.embeddings[0]?.param ?? 'vae';
      throw new ServiceError(400, 'invalid_request', `model "${base.name}" is a flow-matching transformer (FLUX.1 / SD 3.x): LoRAs, embeddings and VAE overrides apply to UNet checkpoints only`, param);
    }
    if (!base.builtByEngine) {
      const param = addons.loras[0]?.param ?? addons.embeddings[0]?.param ?? 'vae';
      throw new ServiceError(400, 'invalid_request', `model "${base.name}" is an ONNX export: LoRAs, embeddings and VAE overrides need a checkpoint the engine builds (MODELS_DIR/checkpoints)`, param);
    }
    const key = `${base.dir}\n${addonsKey(addons)}`;
    let v = this.variants.get(key);
    if (!v) {
      const created: Variant = { key, baseDir: base.dir, refs: 0, lastUsed: Date.now(), bytes: 0, loading: this.build(base, addons) };
      created.loading.then(
        ({ bytes }) => (created.bytes = bytes),
        () => this.variants.delete(key),
      );
      this.variants.set(key, created);
      v = created;
    }
    v.refs++;
    let model: DiffusionModel;
    try {
      model = (await v.loading).model;
    } catch (err) {
      v.refs--;
      throw err;
    }
    v.lastUsed = Date.now();
    await this.makeRoom(key);
    const held = v;
    let released = false;
    return {
      model,
      release: () => {
        if (released) return;
        released = true;
        held.refs--;
        held.lastUsed = Date.now();
      },
    };
  }

  /** Drop every variant of the model folder `baseDir` (the model is being unloaded). */
  async dropModel(baseDir: string): Promise<void> {
    for (const v of [...this.variants.values()]) if (v.baseDir === baseDir) await this.drop(v);
    this.bases.delete(baseDir);
    await this.releaseBranched(baseDir);
  }

  /** Release every variant. */
  async close(): Promise<void> {
    for (const v of [...this.variants.values()]) await this.drop(v);
    this.bases.clear();
    for (const dir of [...this.branched.keys()]) await this.releaseBranched(dir);
  }

  private async drop(v: Variant): Promise<void> {
    this.variants.delete(v.key);
    const { model } = await v.loading.catch(() => ({ model: undefined }));
    await model?.release();
    if (model) this.opts.onEvent?.({ type: 'variant_dropped', model: model.name, key: v.key, bytes: v.bytes });
  }

  /** Drop idle variants, least recently used first, until the held bytes fit the budget (never `keep`). */
  private async makeRoom(keep: string): Promise<void> {
    const budget = this.opts.budgetBytes ?? 0;
    if (budget <= 0) return;
    while (this.bytes > budget) {
      const idle = [...this.variants.values()].filter((v) => v.refs === 0 && v.key !== keep).sort((a, b) => a.lastUsed - b.lastUsed);
      if (idle.length === 0) {
        // Base weights of models with no variant left can go too (they are read again when needed).
        for (const dir of [...this.bases.keys()]) if (![...this.variants.values()].some((v) => v.baseDir === dir)) this.bases.delete(dir);
        return;
      }
      await this.drop(idle[0]);
    }
  }

  /**
   * The model's UNet and text encoders with LoRA branches (lora-branches.ts), opened once per model and shared by
   * all its LoRA variants; undefined when the model is not a conversion-cache entry or they cannot be built (the
   * patched-weights path is used then).
   */
  private branchedGraphs(base: DiffusionModel): Promise<Map<string, BranchedGraph> | undefined> {
    let b = this.branched.get(base.dir);
    if (!b) {
      const cache = this.opts.engine.cache;
      const key = basename(base.dir);
      const networks = ['unet', 'text_encoder', ...(base.sdxl?.textEncoder2 ? ['text_encoder_2'] : [])];
      b =
        cache.dirOf(key) !== base.dir
          ? Promise.resolve(undefined)
          : openBranchedGraphs(cache, key, networks, this.opts.sessionOptions).then(
              (graphs) => new Map(graphs.map((g) => [g.network, g])),
              () => undefined,
            );
      this.branched.set(base.dir, b);
    }
    return b;
  }

  private async releaseBranched(dir: string): Promise<void> {
    const b = this.branched.get(dir);
    this.branched.delete(dir);
    const graphs = await b;
    await Promise.all([...(graphs?.values() ?? [])].map((g) => g.session.release()));
  }

  private baseWeights(dir: string, secondEncoder: boolean): BaseWeights {
    let b = this.bases.get(dir);
    if (!b) {
      const graphs = Promise.all([loadBaseGraph(dir, 'unet'), loadBaseGraph(dir, 'text_encoder'), secondEncoder ? loadBaseGraph(dir, 'text_encoder_2') : undefined]);
      const created: BaseWeights = { bytes: 0, graphs: graphs.then(([unet, text, text2]) => ({ unet, text, ...(text2 ? { text2 } : {}) })) };
      created.graphs.then(
        ({ unet, text, text2 }) => (created.bytes = unet.bytes + text.bytes + (text2?.bytes ?? 0)),
        () => this.bases.delete(dir),
      );
      this.bases.set(dir, created);
      b = created;
    }
    return b;
  }

  private async build(base: DiffusionModel, addons: ResolvedAddons): Promise<{ model: DiffusionModel; bytes: number }> {
    const started = performance.now();
    const hashes = this.opts.engine.hashes;
    const opened: OnnxModel[] = [];
    let bytes = 0;
    const keep: Buffer[] = [];
    let loraMethod: 'branches' | 'patched' | undefined;
    try {
      let unet = base.unet;
      let textEncoder = base.textEncoder;
      let textEncoder2 = base.sdxl?.textEncoder2;
      if (addons.loras.length > 0) {
        const files = await Promise.all(addons.loras.map((l) => openSafetensors(l.path)));
        try {
          const loras = await Promise.all(
            addons.loras.map(async (l, i) => {
              try {
                return { id: l.id, lora: await parseLoraFile(files[i]), strength: l.strength };
              } catch (err) {
                if (err instanceof LoraFormatError) throw new ServiceError(400, 'invalid_request', `LoRA "${l.id}": ${err.message}`, l.param);
                throw err;
              }
            }),
          );
          const refused = (err: unknown): never => {
            if (err instanceof LoraMismatchError) throw new ServiceError(400, 'invalid_request', err.message, addons.loras[err.loraIndex].param);
            if (err instanceof LoraFormatError) throw new ServiceError(400, 'invalid_request', err.message, addons.loras[0].param);
            throw err;
          };
          // Side branches first: the model's one branched session, this set's factors bound to it (no session built,
          // nothing copied). Sets it cannot express (LoHa, LoKr) get patched sessions.
          const branched = this.opts.loraBranches === false ? undefined : await this.branchedGraphs(base);
          const feeds = branched ? await loraBranchFeeds(loras, loraTargetIndex(indexedGraphs(base, branched.get('text_encoder_2') !== undefined, (g) => branched.get(g)!.layout)), new Map([...branched].map(([g, b]) => [g, b.sites]))).catch(refused) : undefined;
          loraMethod = branched && feeds ? 'branches' : 'patched';
          if (branched && feeds) {
            for (const [graph, b] of branched) {
              const f = feeds.get(graph)!;
              const session = b.session.bind(f);
              bytes += Object.values(f).reduce((n, t) => n + t.data.byteLength, 0);
              if (graph === 'unet') unet = session;
              else if (graph === 'text_encoder') textEncoder = session;
              else textEncoder2 = session;
            }
          } else {
            const { unet: unetBase, text: textBase, text2: text2Base } = await this.baseWeights(base.dir, !!base.sdxl?.textEncoder2).graphs;
            const layouts: Record<string, BaseGraph> = { unet: unetBase, text_encoder: textBase, ...(text2Base ? { text_encoder_2: text2Base } : {}) };
            const index = loraTargetIndex(indexedGraphs(base, !!text2Base, (g) => layouts[g].layout));
            const patches = await loraPatches(loras, index).catch(refused);
            const graphs: Array<[BaseGraph, 'unet' | 'text_encoder' | 'text_encoder_2']> = [
              [unetBase, 'unet'],
              [textBase, 'text_encoder'],
            ];
            if (text2Base) graphs.push([text2Base, 'text_encoder_2']);
            for (const [graph, which] of graphs) {
              const mine = patches.filter((p) => p.target.graph === which);
              if (mine.length === 0) continue;
              const s = await openPatchedGraph(graph, mine, this.opts.sessionOptions);
              opened.push(s.session);
              keep.push(...s.buffers);
              bytes += s.bytes;
              if (which === 'unet') unet = s.session;
              else if (which === 'text_encoder') textEncoder = s.session;
              else textEncoder2 = s.session;
            }
          }
        } finally {
          await Promise.all(files.map((f) => f.close()));
        }
      }

      let vaeDecoder = base.vaeDecoder;
      let vaeEncoder = base.vaeEncoder;
      let vae: GenerationParams['vae'];
      if (addons.vae) {
        const baseConfig = JSON.parse(await readFile(join(base.dir, 'vae_decoder', 'config.json'), 'utf8')) as { norm_num_groups?: number };
        let entry;
        try {
          entry = await convertStandaloneVae(addons.vae.path, this.opts.engine, { scalingFactor: base.scalingFactor, shiftFactor: base.shiftFactor, normGroups: baseConfig.norm_num_groups });
        } catch (err) {
          throw new ServiceError(400, 'invalid_request', `VAE "${addons.vae.id}" cannot be used with this model: ${(err as Error).message}`, addons.vae.param);
        }
        const decoder = await OnnxModel.open(join(entry.dir, 'vae_decoder', 'model.onnx'), this.opts.sessionOptions);
        opened.push(decoder);
        const channels = decoder.inputs[0]?.shape[1];
        if (channels !== base.latentChannels) {
          throw new ServiceError(400, 'invalid_request', `VAE "${addons.vae.id}" takes ${channels}-channel latents; model "${base.name}" makes ${base.latentChannels}-channel ones (a VAE for another architecture)`, addons.vae.param);
        }
        vaeDecoder = decoder;
        vaeEncoder = undefined;
        try {
          vaeEncoder = await OnnxModel.open(join(entry.dir, 'vae_encoder', 'model.onnx'), this.opts.sessionOptions);
          opened.push(vaeEncoder);
        } catch {
          // A decoder-only VAE file: img2img and inpainting then fail with the model's "no VAE encoder" error.
        }
        vae = { name: addons.vae.id, hash: entry.sha256 };
      }

      const variant: DiffusionModel = {
        ...base,
        ...(base.sdxl ? { sdxl: { ...base.sdxl, textEncoder2 } } : {}),
        unet,
        textEncoder,
        vaeDecoder,
        vaeEncoder,
        hasVaeEncoder: !!vaeEncoder,
        release: async () => {
          await Promise.all(opened.map((s) => s.release()));
          keep.length = 0;
        },
      };
      if (addons.embeddings.length > 0) {
        // One vector table per text encoder: SD 1.x/2.x have one; SDXL's base reads an embedding's `clip_l` in
        // CLIP-L and its `clip_g` in bigG, the refiner only `clip_g` (A1111 / ComfyUI SDXL embeddings).
        const encoders: Array<{ role: 'clip_l' | 'clip_g'; width: number; tokenizer: DiffusionModel['tokenizer'] }> = !base.sdxl
          ? [{ role: 'clip_l', width: base.hiddenSize, tokenizer: base.tokenizer }]
          : base.sdxl.kind === 'refiner'
            ? [{ role: 'clip_g', width: base.sdxl.encoderWidths[0], tokenizer: base.tokenizer }]
            : [
                { role: 'clip_l', width: base.sdxl.encoderWidths[0], tokenizer: base.tokenizer },
                { role: 'clip_g', width: base.sdxl.encoderWidths[1], tokenizer: base.sdxl.tokenizer2! },
              ];
        const perEncoder: Array<Array<{ name: string; vectors: Float32Array; count: number }>> = encoders.map(() => []);
        for (const e of addons.embeddings) {
          const f = await openSafetensors(e.path);
          try {
            const file = await readEmbeddingFile(f);
            const vs = encoders.map((enc) => vectorsFor(file, enc.role, enc.width, e.id));
            if (vs.some((v) => v.count !== vs[0].count)) throw new EmbeddingFormatError(`embedding "${e.id}" has ${vs.map((v) => v.count).join(' and ')} vectors for this model's text encoders; they must have as many each`);
            // The name a prompt uses: the file's stem (A1111); a diffusers file also answers to its token.
            const stem = e.id.split('/').pop()!;
            const token = [...f.entries.keys()][0];
            vs.forEach((v, i) => {
              perEncoder[i].push({ name: stem, vectors: v.data, count: v.count });
              if (/^<.+>$/.test(token) && token !== stem) perEncoder[i].push({ name: token, vectors: v.data, count: v.count });
            });
          } catch (err) {
            if (err instanceof EmbeddingFormatError) throw new ServiceError(400, 'invalid_request', err.message, e.param);
            throw err;
          } finally {
            await f.close();
          }
        }
        const sets = encoders.map((enc, i) => textualInversionTable(enc.tokenizer, enc.width, perEncoder[i]));
        variant.textualInversion = base.sdxl ? { embeddings: [], table: new Float32Array(0), count: sets[0].count, perEncoder: sets } : sets[0];
      }
      variant.addons = {
        ...(addons.loras.length ? { loras: await Promise.all(addons.loras.map(async (l) => ({ name: l.id, strength: l.strength, hash: await hashes.of(l.path) }))) } : {}),
        ...(addons.embeddings.length ? { embeddings: await Promise.all(addons.embeddings.map(async (e) => ({ name: e.id, hash: await hashes.of(e.path) }))) } : {}),
        ...(vae ? { vae } : {}),
      };
      this.opts.onEvent?.({ type: 'variant_built', model: base.name, key: addonsKey(addons), seconds: (performance.now() - started) / 1000, bytes, ...(loraMethod ? { lora: loraMethod } : {}) });
      return { model: variant, bytes };
    } catch (err) {
      await Promise.all(opened.map((s) => s.release()));
      throw err;
    }
  }
}

/**
 * The graphs of `base` a LoRA target index covers (lora-targets.ts): SDXL's CLIP-L is kohya's lora_te1_ / PEFT
 * text_encoder., bigG lora_te2_ / text_encoder_2. (the refiner's only encoder is bigG).
 */
function indexedGraphs(base: DiffusionModel, secondEncoder: boolean, layout: (graph: string) => ReadonlyMap<string, ExternalTensor>): IndexedGraph[] {
  const refiner = base.sdxl?.kind === 'refiner';
  return [
    { graph: 'unet', kind: 'unet', initializers: layout('unet') },
    { graph: 'text_encoder', kind: 'text_encoder', textEncoderIndex: refiner ? 2 : 1, dualTextEncoders: !!base.sdxl, initializers: layout('text_encoder') },
    ...(secondEncoder ? [{ graph: 'text_encoder_2', kind: 'text_encoder' as const, textEncoderIndex: 2 as const, dualTextEncoders: true, initializers: layout('text_encoder_2') }] : []),
  ];
}
