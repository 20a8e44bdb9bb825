/**
 * Model administration on a GPU host, reading the same settings as the GPU service (MODELS_DIR,
 * ORT_EXECUTION_PROVIDERS, CHECKPOINT_DTYPE, CHECKPOINT_ATTENTION, CLIP_TOKENIZER_DIR, HF_ENDPOINT):
 *
 *   npm run models -- list                 every model with kind, architecture, format, dtypes, cache state, errors
 *   npm run models -- convert <id|file>    build a checkpoint's graphs into MODELS_DIR/.cache now (a progress bar
 *                                          on stderr), and on the CPU provider the graphs onnxruntime optimizes
 *                                          from them, so the service's first request does not wait for either
 *   npm run models -- tokenizer            fetch the CLIP BPE files (vocab.json, merges.txt) single-file
 *                                          checkpoints need from HF_ENDPOINT's openai/clip-vit-large-patch14
 *
 * Exit codes: 0 done, 1 the command failed (the reason is printed), 2 a usage mistake.
 */
import { convertFlowCheckpoint, FLOW_AT_LOAD_NETWORKS, isFlowFamily } from '../gpu-service/src/checkpoints/convert-flow';
import { describeFlowModel, type FlowModelSpec } from '../gpu-service/src/checkpoints/flow-spec';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { checkpointEngineFor, convertCheckpoint, openCheckpoint, type CheckpointRef } from '../gpu-service/src/checkpoints/checkpoint-engine';
import { describeModel } from '../gpu-service/src/checkpoints/model-spec';
import { optimizedGraphs } from '../gpu-service/src/checkpoints/optimized-graphs';
import { checkpointFloatType, loadModelSettings, type ModelSettings } from '../gpu-service/src/config';
import { listCheckpointFiles } from '../gpu-service/src/models/checkpoint-catalog';
import { ModelRegistry } from '../gpu-service/src/models/model-registry';

/** The repository the CLIP tokenizer files come from, and the files. */
export const CLIP_TOKENIZER_REPO = 'openai/clip-vit-large-patch14';
const TOKENIZER_FILES = ['vocab.json', 'merges.txt'];

function engineOf(settings: ModelSettings) {
  return checkpointEngineFor(settings.modelsDir, {
    floatType: checkpointFloatType(settings.checkpointDtype, settings.executionProviders),
    attention: settings.checkpointAttention,
    tokenizerDir: settings.clipTokenizerDir,
    t5TokenizerDir: settings.t5TokenizerDir,
    defaultBases: settings.defaultBases,
  });
}

/** Rows of `list`: the GPU service's own listing, read from disk. */
async function list(settings: ModelSettings): Promise<void> {
  const registry = new ModelRegistry(settings.modelsDir, { sessionOptions: {}, warmUp: false, checkpoints: engineOf(settings) });
  const rows = await registry.list();
  if (rows.length === 0) {
    console.log(`no models in ${settings.modelsDir}`);
    return;
  }
  for (const r of rows) {
    const facts = [r.kind, r.architecture, r.format, r.stored_dtype && `${r.stored_dtype}→${r.dtype}`, r.prediction_type, r.cache && `cache ${r.cache}`].filter(Boolean).join(', ');
    console.log(`${r.id}  (${facts})${r.error ? `\n    broken: ${r.error}` : ''}`);
  }
}

/** The checkpoint an argument names: a model id under MODELS_DIR/checkpoints, or a path to one. */
async function findCheckpoint(settings: ModelSettings, arg: string): Promise<CheckpointRef> {
  const files = await listCheckpointFiles(settings.modelsDir);
  const abs = path.resolve(arg);
  const found = files.find((f) => f.id === arg || f.path === abs);
  if (!found) {
    throw new UsageError(`"${arg}" is not a checkpoint under ${path.join(settings.modelsDir, 'checkpoints')} (see npm run models -- list)`);
  }
  return { id: found.id, path: found.path, format: found.format };
}

async function convert(settings: ModelSettings, arg: string): Promise<void> {
  const ref = await findCheckpoint(settings, arg);
  const engine = engineOf(settings);
  await engine.cache.sweep();
  const parts = await openCheckpoint(ref, engine);
  const bar = new cliProgress.SingleBar({ format: '{graph} |{bar}| {value}/{total} weights', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
  let current = '';
  try {
    const flow = isFlowFamily(parts.family);
    const spec = flow ? await describeFlowModel(parts) : await describeModel(parts);
    console.error(`${ref.id}: ${spec.architecture}, ${spec.predictionType}, ${spec.storedDtype} → ${engine.floatType}; hashing and building…`);
    const started = performance.now();
    const onProgress = (p: { folder: string; graph: number; graphs: number; weights: number; totalWeights: number }) => {
      if (p.folder !== current) {
        if (current) bar.stop();
        current = p.folder;
        bar.start(p.totalWeights, 0, { graph: `${p.folder} (${p.graph}/${p.graphs})` });
      }
      bar.update(p.weights);
    };
    const entry =
      'unet' in spec ? await convertCheckpoint(ref, parts, spec, engine, onProgress) : await convertFlowCheckpoint(ref, parts, spec as FlowModelSpec, engine, onProgress);
    if (current) bar.stop();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(entry.built ? `converted ${ref.id} in ${seconds} s → ${entry.dir}` : `${ref.id} is already converted: ${entry.dir}`);
    const graphs = await optimizedGraphs(engine.cache, entry.key, { executionProviders: settings.executionProviders }, flow ? { atLoad: FLOW_AT_LOAD_NETWORKS } : {});
    if (graphs.error) throw new Error(graphs.error);
    if (graphs.built) console.log(`optimized for the CPU execution provider in ${graphs.seconds.toFixed(1)} s → ${path.join(entry.dir, graphs.folder!)}`);
  } finally {
    if (current) bar.stop();
    await parts.close();
  }
}

/** Download the CLIP BPE files into CLIP_TOKENIZER_DIR (both, or neither: written to a temporary folder first). */
async function tokenizer(settings: ModelSettings): Promise<void> {
  const dir = settings.clipTokenizerDir;
  const tmp = `${dir}.download-${process.pid}`;
  await mkdir(tmp, { recursive: true });
  try {
    for (const file of TOKENIZER_FILES) {
      const url = `${settings.hfEndpoint}/${CLIP_TOKENIZER_REPO}/resolve/main/${file}`;
      const res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(60_000) });
      if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
      await writeFile(path.join(tmp, file), Buffer.from(await res.arrayBuffer()));
    }
    await mkdir(path.dirname(dir), { recursive: true });
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    console.log(`CLIP tokenizer files written to ${dir}`);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** A mistake in how the command was called (exit 2). */
class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const settings = loadModelSettings();
  const program = new Command('models').description('model administration (MODELS_DIR and the conversion cache)').exitOverride();
  program.command('list').description('list every model with its detected facts and errors').action(() => list(settings));
  program.command('convert <model>').description('build a checkpoint into the conversion cache now').action((model: string) => convert(settings, model));
  program.command('tokenizer').description(`fetch the CLIP tokenizer files from HF_ENDPOINT (${CLIP_TOKENIZER_REPO})`).action(() => tokenizer(settings));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    if (e.code?.startsWith('commander.')) return 2;
    console.error(`models: ${e.message ?? err}`);
    return err instanceof UsageError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
