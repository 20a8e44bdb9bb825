/**
 * Times every UNet call of a loaded model at two levels, without changing product code: the
 * `OnnxModel.run` wrapper (feed conversion to onnxruntime tensors and back included) and the native
 * `InferenceSession.run` inside it (pure onnxruntime time). Both are wrapped on the model's own
 * instances (own properties shadowing the prototype methods); `restore()` removes the wrappers.
 */
import type { DiffusionModel } from '../../gpu-service/src/models/diffusion-model';

/** Timestamps (performance.now(), ms) of one UNet call. */
export interface UnetCallTiming {
  /** OnnxModel.run entered / returned. */
  wrapperStart: number;
  wrapperEnd: number;
  /** InferenceSession.run entered / its promise settled. */
  sessionStart: number;
  sessionEnd: number;
}

/** Handle returned by instrumentUnet. */
export interface UnetTimer {
  /** Every call since the last `clear()`, in call order. */
  readonly calls: UnetCallTiming[];
  clear(): void;
  /** Sum of session.run (pure onnxruntime) and of OnnxModel.run durations, ms, over calls that started at or after `from`. */
  totalsSince(from: number): { sessionMs: number; wrapperMs: number; calls: number };
  /** Remove both wrappers. */
  restore(): void;
}

type RunFn = (...args: unknown[]) => Promise<unknown>;
interface SessionHolder {
  session: { run: RunFn };
}

/**
 * Wrap `model.unet`'s run calls with timers.
 * @throws Error when the OnnxModel does not hold its onnxruntime session in a `session` field (the
 *   benchmark then cannot separate wrapper time from onnxruntime time).
 */
export function instrumentUnet(model: DiffusionModel): UnetTimer {
  const unet = model.unet as unknown as { run: RunFn } & Partial<SessionHolder>;
  const session = unet.session;
  if (!session || typeof session.run !== 'function') {
    throw new Error('instrumentUnet: OnnxModel has no `session` field with run(); update scripts/bench/unet-timer.ts');
  }
  const calls: UnetCallTiming[] = [];
  let current: UnetCallTiming | undefined;
  const originalSessionRun = session.run;
  const originalRun = unet.run;

  session.run = async function timedSessionRun(this: unknown, ...args: unknown[]) {
    const start = performance.now();
    try {
      return await originalSessionRun.apply(session, args);
    } finally {
      if (current) {
        current.sessionStart = start;
        current.sessionEnd = performance.now();
      }
    }
  };
  unet.run = async function timedRun(...args: unknown[]) {
    const timing: UnetCallTiming = { wrapperStart: performance.now(), wrapperEnd: 0, sessionStart: 0, sessionEnd: 0 };
    // UNet calls of one model are sequential inside a job; the benchmark runs one job at a time.
    current = timing;
    try {
      return await originalRun.apply(unet, args);
    } finally {
      timing.wrapperEnd = performance.now();
      current = undefined;
      calls.push(timing);
    }
  };

  return {
    calls,
    clear: () => void calls.splice(0),
    totalsSince(from: number) {
      let sessionMs = 0;
      let wrapperMs = 0;
      let n = 0;
      for (const c of calls) {
        if (c.wrapperStart < from) continue;
        sessionMs += c.sessionEnd - c.sessionStart;
        wrapperMs += c.wrapperEnd - c.wrapperStart;
        n++;
      }
      return { sessionMs, wrapperMs, calls: n };
    },
    restore() {
      delete (unet as Partial<{ run: RunFn }>).run;
      delete (session as Partial<{ run: RunFn }>).run;
      // If run was an own property before (not a prototype method), put the original back.
      if (unet.run !== originalRun) unet.run = originalRun;
      if (session.run !== originalSessionRun) session.run = originalSessionRun;
    },
  };
}
