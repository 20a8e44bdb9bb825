#!/usr/bin/env node
// `draw` bin entry (package.json "bin"): runs the TypeScript CLI through tsx's ESM loader API,
// resolved from this package's own node_modules, so `npx draw` works without a build step.
import { tsImport } from 'tsx/esm/api';

await tsImport('../src/main.ts', import.meta.url);
