/**
 * AUTOMATIC1111's extra-network prompt syntax (stable-diffusion-webui `modules/extra_networks.py`):
 * `<lora:name>` / `<lora:name:0.8>` (and `<lyco:…>`, the LyCORIS extension's spelling) name a LoRA and its
 * strength inside the prompt. The tags are taken out of the prompt text and become LoRA requests, exactly like
 * the API's `loras` field; the rest of the prompt keeps its spacing around them collapsed.
 */

/** One LoRA named in a prompt. */
export interface PromptLora {
  name: string;
  strength: number;
}

/** A prompt tag that cannot be honoured; the message names it and the rule. */
export class PromptAddonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PromptAddonError';
  }
}

const TAG = /<(\w+):([^>]*)>/g;

/**
 * Take `<lora:…>` tags out of a prompt.
 * @returns the prompt without the tags and the LoRAs in the order written.
 * @throws PromptAddonError for a malformed strength, per-component strengths (`<lora:x:0.5:1>`), or another
 *         extra network (`<hypernet:…>`) this service does not run.
 */
export function extractPromptLoras(prompt: string): { prompt: string; loras: PromptLora[] } {
  const loras: PromptLora[] = [];
  const cleaned = prompt.replace(TAG, (whole, kind: string, args: string) => {
    const k = kind.toLowerCase();
    if (k !== 'lora' && k !== 'lyco') {
      if (k === 'hypernet') throw new PromptAddonError(`${whole}: hypernetworks are not supported (LoRAs are: <lora:name:strength>)`);
      return whole;
    }
    const parts = args.split(':');
    const name = parts[0].trim();
    if (!name) throw new PromptAddonError(`${whole}: the LoRA name is empty`);
    if (parts.length > 2) throw new PromptAddonError(`${whole}: separate text-encoder and UNet strengths are not supported; write <lora:${name}:strength>`);
    const strength = parts.length === 2 ? Number(parts[1]) : 1;
    if (parts.length === 2 && (parts[1].trim() === '' || !Number.isFinite(strength))) throw new PromptAddonError(`${whole}: the strength must be a number`);
    loras.push({ name, strength });
    return ' ';
  });
  return { prompt: loras.length ? cleaned.replace(/\s{2,}/g, ' ').replace(/\s+([,.])/g, '$1').trim() : prompt, loras };
}
