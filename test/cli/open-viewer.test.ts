import { describe, expect, it } from 'vitest';
import { viewerCommand } from '../../cli/src/open-viewer';

describe('viewerCommand', () => {
  it('uses each desktop’s opener', () => {
    expect(viewerCommand('/tmp/a b.png', 'linux')).toEqual({ command: 'xdg-open', args: ['/tmp/a b.png'] });
    expect(viewerCommand('/tmp/a.png', 'darwin')).toEqual({ command: 'open', args: ['/tmp/a.png'] });
    expect(viewerCommand('C:\\a.png', 'win32')).toEqual({ command: 'cmd', args: ['/c', 'start', '""', 'C:\\a.png'] });
    expect(viewerCommand('/tmp/a.png', 'freebsd').command).toBe('xdg-open');
  });
});
