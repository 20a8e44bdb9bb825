/**
 * The repository stands alone: every relative link or `path` a tracked Markdown file points at exists in the
 * checkout, and none reaches outside it (../shared holds test fixtures only and is absent from a clone).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const markdown = execFileSync('git', ['ls-files', '*.md'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);

describe('documentation links', () => {
  it('finds the Markdown files', () => {
    expect(markdown).toEqual(expect.arrayContaining(['README.md', 'cli/README.md', 'docs/architecture.md', 'docs/samplers.md']));
  });

  it.each(markdown)('%s links only to files inside the repository that exist', (file) => {
    const text = readFileSync(resolve(root, file), 'utf8');
    expect(text, `${file} mentions ../shared`).not.toMatch(/\.\.\/shared\//);
    const targets = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]).filter((t) => !/^[a-z]+:/i.test(t));
    for (const target of targets) {
      const path = resolve(dirname(resolve(root, file)), target);
      expect(relative(root, path).startsWith('..'), `${file} → ${target} leaves the repository`).toBe(false);
      expect(existsSync(path), `${file} → ${target} does not exist`).toBe(true);
    }
  });
});
