/**
 * Releases that share their tensors with another and differ only in training: the listing's `variant`, read from
 * the model's id because the weights cannot tell them apart (SD 3.5 Large and Large Turbo have one architecture,
 * detect/mmdit-config.ts). The edge picks per-model defaults by architecture + variant (shared/src/model-defaults.ts).
 */
const RELEASE_VARIANTS: readonly { architecture: string; variant: string; idPattern: RegExp }[] = [
  // stabilityai/stable-diffusion-3.5-large-turbo, sd3.5_large_turbo.safetensors, …-large-turbo-Q4_0.gguf
  { architecture: 'Stable Diffusion 3.5 Large', variant: 'turbo', idPattern: /turbo/i },
];

/**
 * The variant of a checkpoint of the detected `architecture` whose model id is `id`, or undefined.
 * @param architecture the detected architecture name ("Stable Diffusion 3.5 Large", …)
 * @param id the model id (path under MODELS_DIR/checkpoints, or an hf.co reference)
 */
export function releaseVariant(architecture: string, id: string): string | undefined {
  return RELEASE_VARIANTS.find((row) => row.architecture === architecture && row.idPattern.test(id))?.variant;
}
