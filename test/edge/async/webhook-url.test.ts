import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../edge/src/lib/api-error';
import { checkWebhookUrl } from '../../../edge/src/webhooks/webhook-url';

function refusal(url: string, allowHttp = false): ApiError {
  try {
    checkWebhookUrl(url, { allowHttp });
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error(`${url} was accepted`);
}

describe('webhook URL SSRF rules', () => {
  it('accepts public https URLs', () => {
    expect(checkWebhookUrl('https://hooks.example.com/image-done?x=1').hostname).toBe('hooks.example.com');
    expect(checkWebhookUrl('https://93.184.216.34:8443/hook').port).toBe('8443');
  });

  it.each([
    ['http without the dev flag', 'http://hooks.example.com/'],
    ['another scheme', 'ftp://hooks.example.com/'],
    ['not a URL', 'hooks.example.com/x'],
    ['credentials', 'https://user:pw@hooks.example.com/'],
    ['localhost', 'https://localhost/'],
    ['a .internal name', 'https://metadata.google.internal/'],
    ['a single-label name', 'https://intranet/'],
    ['loopback', 'https://127.0.0.1/'],
    ['loopback written as a number', 'https://2130706433/'],
    ['loopback in hex', 'https://0x7f.1/'],
    ['10/8', 'https://10.1.2.3/'],
    ['172.16/12', 'https://172.20.0.1/'],
    ['192.168/16', 'https://192.168.1.1/'],
    ['link-local metadata', 'https://169.254.169.254/latest/meta-data'],
    ['CGNAT', 'https://100.64.0.1/'],
    ['0.0.0.0', 'https://0.0.0.0/'],
    ['IPv6 loopback', 'https://[::1]/'],
    ['IPv4-mapped IPv6 loopback', 'https://[::ffff:127.0.0.1]/'],
    ['IPv6 unique-local', 'https://[fd00::1]/'],
    ['IPv6 link-local', 'https://[fe80::1]/'],
  ])('refuses %s', (_why, url) => {
    const error = refusal(url);
    expect(error.status).toBe(400);
    expect(error.param).toBe('extra.webhook.url');
    expect(error.code).toBe('invalid_webhook_url');
  });

  it('accepts http only with the dev flag, and never for private hosts', () => {
    expect(checkWebhookUrl('http://hooks.example.com/', { allowHttp: true }).protocol).toBe('http:');
    expect(refusal('http://127.0.0.1:9000/', true).status).toBe(400);
  });

  it('accepts receivers on this machine only with the development loopback allowance', () => {
    for (const url of ['http://127.0.0.1:9000/hook', 'http://localhost:3000/', 'https://[::1]:8443/x']) {
      expect(refusal(url).code).toBe('invalid_webhook_url');
      expect(checkWebhookUrl(url, { allowLoopback: true }).href).toBe(new URL(url).href);
    }
    // The allowance is for this machine alone: private networks, other loopback spellings and credentials stay out.
    for (const url of ['http://10.0.0.5/', 'http://192.168.1.1/', 'http://127.0.0.2/', 'http://[::ffff:10.0.0.1]/', 'http://u:p@127.0.0.1/', 'file:///etc/passwd']) {
      expect(() => checkWebhookUrl(url, { allowLoopback: true })).toThrow(ApiError);
    }
  });
});
