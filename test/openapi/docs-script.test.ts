import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { DOCS_JS } from '../../edge/src/openapi/docs-page';

/** Just enough DOM for docs.js: elements with classList, dataset, id and event listeners. */
function fakeElement<P extends object>(props: P = {} as P) {
  const classes = new Set<string>();
  const listeners: Record<string, ((event: unknown) => void)[]> = {};
  return {
    ...props,
    classList: { toggle: (name: string, on: boolean) => (on ? classes.add(name) : classes.delete(name)), has: (name: string) => classes.has(name) },
    addEventListener: (type: string, fn: (event: unknown) => void) => (listeners[type] ??= []).push(fn),
    fire: (type: string, event: unknown = {}) => listeners[type]?.forEach((fn) => fn(event)),
  };
}

describe('docs.js (the /docs filter box)', () => {
  it('parses and hides the operations (and their nav links) that do not match every typed word', () => {
    const sections = [
      fakeElement({ id: 'createImage', dataset: { search: 'post /v1/images/generations generate images from a prompt' } }),
      fakeElement({ id: 'getTask', dataset: { search: 'get /v1/tasks/{id} a task (any api style) by id' } }),
    ];
    const links = sections.map((s) => {
      const item = fakeElement();
      return { parentElement: item, getAttribute: () => `#${s.id}` };
    });
    const filter = fakeElement({ value: '' });
    const document = fakeElement({
      activeElement: null,
      getElementById: (id: string) => (id === 'filter' ? filter : null),
      querySelectorAll: (selector: string) => (selector === 'section.op' ? sections : links),
    });
    vm.runInNewContext(DOCS_JS, { document });

    filter.value = 'GET tasks';
    filter.fire('input');
    expect(sections[0].classList.has('hidden')).toBe(true);
    expect(sections[1].classList.has('hidden')).toBe(false);
    expect(links[0].parentElement.classList.has('hidden')).toBe(true);
    filter.value = '';
    filter.fire('input');
    expect(sections.some((s) => s.classList.has('hidden'))).toBe(false);
  });
});
