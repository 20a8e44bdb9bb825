import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BASE_URL,
  MAX_SEED,
  parseBackground,
  parseBaseUrl,
  parseCfgScale,
  parseFormat,
  parseLora,
  parseSeed,
  parseSize,
  parseSteps,
} from '../../cli/src/flag-parsers';

describe('flag parsers', () => {
  it('parseLora takes name[:strength] (default 1, ids with folders), repeatable, and refuses empty names and strengths outside -4..4', () => {
    expect(parseLora('styles/ink:0.8')).toEqual([{ model_name: 'styles/ink', strength: 0.8 }]);
    expect(parseLora(' detail ', [{ model_name: 'a', strength: -1 }])).toEqual([{ model_name: 'a', strength: -1 }, { model_name: 'detail', strength: 1 }]);
    expect(parseLora('odd:name')).toEqual([{ model_name: 'odd:name', strength: 1 }]);
    expect(parseLora('x:-0.5')).toEqual([{ model_name: 'x', strength: -0.5 }]);
    for (const bad of ['', ':0.5', 'x:', 'x:4.5', 'x:-5']) expect(() => parseLora(bad), bad).toThrow(InvalidArgumentError);
  });

  it('parseSize normalises WxH and refuses anything else', () => {
    expect(parseSize('512x768')).toBe('512x768');
    expect(parseSize(' 0512 X 64 ')).toBe('512x64');
    expect(parseSize('256×256')).toBe('256x256');
    for (const bad of ['big', '512', '512x', 'x512', '0x512', '512x0', '-512x512', '512.5x512', '512x512x3']) {
      expect(() => parseSize(bad), bad).toThrow(InvalidArgumentError);
    }
  });

  it('parseSeed takes 0..2^64-1 exactly (a string above 2^53-1), and -1 as random', () => {
    expect(parseSeed('0')).toBe(0);
    expect(parseSeed('42')).toBe(42);
    expect(parseSeed(String(2 ** 53 - 1))).toBe(2 ** 53 - 1);
    expect(parseSeed('9007199254740993')).toBe('9007199254740993');
    expect(parseSeed(String(MAX_SEED))).toBe('18446744073709551615');
    expect(parseSeed('-1')).toBeNull();
    for (const bad of ['-2', '1.5', 'abc', '', String(MAX_SEED + 1n), '1e3', '007']) {
      expect(() => parseSeed(bad), bad).toThrow(InvalidArgumentError);
    }
  });

  it('parseSteps takes whole numbers ≥ 1', () => {
    expect(parseSteps('20')).toBe(20);
    for (const bad of ['0', '-3', '2.5', 'ten']) expect(() => parseSteps(bad), bad).toThrow(InvalidArgumentError);
  });

  it('parseCfgScale takes finite numbers ≥ 0', () => {
    expect(parseCfgScale('7.5')).toBe(7.5);
    expect(parseCfgScale('0')).toBe(0);
    for (const bad of ['-1', 'Infinity', 'NaN', '', 'high']) expect(() => parseCfgScale(bad), bad).toThrow(InvalidArgumentError);
  });

  it('parseBackground accepts transparent, opaque and auto in any case, nothing else', () => {
    expect(parseBackground('Transparent')).toBe('transparent');
    expect(parseBackground(' opaque ')).toBe('opaque');
    expect(parseBackground('AUTO')).toBe('auto');
    expect(() => parseBackground('white')).toThrow(InvalidArgumentError);
  });

  it('parseFormat accepts png, jpeg (or jpg) and webp in any case', () => {
    expect(parseFormat('PNG')).toBe('png');
    expect(parseFormat('jpg')).toBe('jpeg');
    expect(parseFormat('webp')).toBe('webp');
    expect(() => parseFormat('gif')).toThrow(InvalidArgumentError);
  });

  it('parseBaseUrl keeps origin and path prefix, drops trailing "/" and "/v1"', () => {
    expect(parseBaseUrl('http://127.0.0.1:8787')).toBe('http://127.0.0.1:8787');
    expect(parseBaseUrl('http://127.0.0.1:8787/')).toBe('http://127.0.0.1:8787');
    expect(parseBaseUrl('')).toBe(DEFAULT_BASE_URL);
    expect(parseBaseUrl('https://api.example.com/v1')).toBe('https://api.example.com');
    expect(parseBaseUrl('https://example.com/images/v1/')).toBe('https://example.com/images');
    for (const bad of ['localhost:8787', 'ftp://x', 'http://x/?a=1', 'not a url']) {
      expect(() => parseBaseUrl(bad), bad).toThrow(InvalidArgumentError);
    }
  });
});
