/**
 * Keys of the files a T5 encoder comes in → the canonical transformers `T5EncoderModel` names of
 * checkpoints/detect/t5-config.ts:
 * - diffusers `text_encoder_2/` (FLUX.1) / `text_encoder_3/` (SD 3.x) `model.safetensors` or its shards: already
 *   canonical (`shared.weight`, `encoder.*`).
 * - ComfyUI / A1111 standalone `t5xxl_fp16.safetensors` (`models/text_encoders/`, `models/clip/`): the same names,
 *   sometimes with the tied table as `encoder.embed_tokens.weight` instead of (or besides) `shared.weight`.
 * - SD 3 single files with the encoders inside: the same names under `text_encoders.t5xxl.transformer.` (pass it as
 *   `prefix`).
 * - a full `T5ForConditionalGeneration` (`decoder.*`, `lm_head.weight`): the decoder is not the encoder; left out.
 * `encoder.embed_tokens.weight` becomes `shared.weight` when the file has no `shared.weight`, and is left out when
 * it has both (transformers ties them: one table). Keys outside `prefix` are left out.
 * Source: transformers `T5EncoderModel` (`_tied_weights_keys`), diffusers `loaders/single_file_utils.py`
 * (`text_encoders.t5xxl.transformer.` for SD 3).
 */
import { T5_NAMES } from '../detect/t5-config';

/**
 * A renaming function for one T5 encoder's keys (undefined = not part of the encoder).
 * @param keys every key of the encoder's files (all shards: which embedding key exists decides its name).
 * @param prefix what the keys start with (`text_encoders.t5xxl.transformer.` in SD 3 single files); default none.
 */
export function t5EncoderKeyMap(keys: readonly string[], prefix = ''): (key: string) => string | undefined {
  const hasShared = keys.includes(prefix + T5_NAMES.tokenEmbedding);
  return (key: string) => {
    if (!key.startsWith(prefix)) return undefined;
    const name = key.slice(prefix.length);
    if (name === T5_NAMES.encoderTokenEmbedding) return hasShared ? undefined : T5_NAMES.tokenEmbedding;
    if (name === T5_NAMES.tokenEmbedding || name.startsWith('encoder.')) return name;
    return undefined;
  };
}
