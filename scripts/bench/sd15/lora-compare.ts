/**
 * Issue 13's LoRA switch, before and after, in one run: `npx tsx scripts/bench/sd15/lora-compare.ts [modelsDir]
 * [modelChannels]`. The patched-sessions way (a new onnxruntime session per set over the unoptimized graph with a
 * copy of every weight) needs several GB per set at SD 1.5 size, more than a shared machine allows, so both ways run
 * on the SD 1.5 architecture at reduced UNet width (model_channels 160 instead of 320 by default: a quarter of the
 * UNet's weights; VAE and CLIP ViT-L at full size), with the same rank-32 kohya LoRAs over the same modules as the
 * `sd15` section (sd15-lora.ts). One child process loads the model once and measures the branches (the service's
 * way), then the patched sessions. Prints one JSON line (every figure, load averages) to stdout. modelsDir defaults to
 * bench-models/lora-compare (git-ignored; the checkpoint is kept there and reused, the conversion cache rebuilt).
 */
import { rm } from 'node:fs/promises';
import { loadavg, cpus } from 'node:os';
import path from 'node:path';
import { SD15_ARCH } from '../../checkpoints/ldm-layout';
import { ensureSd15Checkpoint, SD15_BENCH_CHECKPOINT } from './sd15-checkpoint';
import { runChild } from './sd15-section';

const modelsDir = path.resolve(process.argv[2] ?? 'bench-models/lora-compare');
const modelChannels = Number(process.argv[3] ?? 160);
const spec = { ...SD15_BENCH_CHECKPOINT, unet: { ...SD15_ARCH.unet, modelChannels }, seed: 16 };
const log = (line: string) => process.stderr.write(`lora-compare: ${line}\n`);

const load = [loadavg()[0]];
const files = await ensureSd15Checkpoint(modelsDir, spec);
log(`checkpoint (UNet model_channels ${modelChannels}) ${(files.checkpointBytes / 1e9).toFixed(2)} GB`);
await rm(files.cacheDir, { recursive: true, force: true });
const convert = await runChild({ modelsDir, threads: 0, task: 'convert' });
load.push(convert.loadAverage);
log(`converted in ${convert.load.seconds.toFixed(1)} s`);
const run = await runChild({ modelsDir, threads: 0, task: 'lora', unetSize: 256, loraRank: 32, loraMethods: ['branches', 'patched'] });
load.push(run.loadAverage);
const result = { modelChannels, cpu: cpus()[0]?.model, cores: cpus().length, loadAverage1m: load, branches: run.lora, patched: run.loraMore?.[0] };
process.stdout.write(`${JSON.stringify(result)}\n`);
