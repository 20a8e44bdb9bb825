/**
 * The playground browser tests of playground.test.ts, run a second time against the real stack that
 * `npm start` starts (GPU service on the tiny model + the Worker under wrangler dev), instead of the fake API.
 * The two fake-only cases (a crafted 400 body and a server that refuses streaming) are skipped in this run:
 * the real stack cannot be made to answer that way; playground.test.ts covers them against the fake.
 */
import { afterAll } from 'vitest';
import { startStack } from '../helpers/stack';

const stack = await startStack();
process.env.PLAYGROUND_BASE_URL = stack.baseUrl;
process.env.PLAYGROUND_API_KEY = stack.apiKey;
afterAll(() => stack.stop());

await import('./playground.test');
