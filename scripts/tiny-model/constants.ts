/**
 * The numbers that define the analytic tiny model.
 *
 * Every value that a real Stable Diffusion model keeps in a config file is deliberately
 * NON-default here (hidden size 32 instead of 768, VAE scaling_factor 0.5 instead of 0.18215,
 * betas 0.001..0.015 instead of 0.00085..0.012), so a pipeline that hard-codes SD 1.x constants
 * produces wrong colours instead of passing by accident. Where each value is written in the
 * generated folder is documented in scripts/tiny-model/README.md.
 */

/** Text encoder hidden size H (CLIP ViT-L/14 uses 768). Written to text_encoder/config.json and unet/config.json. */
export const TINY_HIDDEN_SIZE = 32;

/**
 * Number of "transformer layers" the text encoder pretends to have: it outputs hidden_states.0 …
 * hidden_states.TINY_NUM_LAYERS, the last one equal to last_hidden_state (CLIP ViT-L/14 has 12).
 */
export const TINY_NUM_LAYERS = 4;

/** CLIP's context length: tokenizer model_max_length and the text encoder's sequence length. */
export const TINY_SEQUENCE_LENGTH = 77;

/** Native image size [width, height] in pixels (model_index.json "native_size"); latents are 1/8 of it. */
export const TINY_NATIVE_SIZE: readonly [number, number] = [256, 256];

/** VAE latent scaling factor (diffusers AutoencoderKL `scaling_factor`; SD 1.x uses 0.18215). */
export const TINY_SCALING_FACTOR = 0.5;

/** Scheduler betas: "scaled_linear" from TINY_BETA_START to TINY_BETA_END over 1000 training steps. */
export const TINY_BETA_START = 0.001;
/** See TINY_BETA_START. */
export const TINY_BETA_END = 0.015;
/** Training timesteps of the discrete schedule (t = 0 … 999). */
export const TINY_NUM_TRAIN_TIMESTEPS = 1000;

/**
 * Standard deviation s of the Gaussian "data distribution" x0 ~ N(mu(text), Σ) across the image,
 * per latent element, in the UNet's (scaled) latent space: the pixel-to-pixel spread (every direction
 * orthogonal to the image's mean colour). Small against the colour latents (|mu| ≈ 1) so a txt2img
 * image is an even colour.
 */
export const TINY_DATA_STD = 0.1;

/**
 * The data spread along each channel's spatial-mean direction u = 1/√N (the image's overall colour), in
 * unit-vector terms: Σ = s²·I + (TINY_MEAN_STD² − s²)·u·uᵀ per channel. Wide, like the spread of a real
 * model's latents (std ≈ 1), so img2img keeps the source's colour in proportion to strength: the share
 * kept is TINY_MEAN_STD/√(TINY_MEAN_STD² + σ²) before guidance — about 100 % at denoise 0.05 (σ ≈ 0.25),
 * 90 % at 0.5 (σ ≈ 1.95), 14 % at 1.0 (σ_max ≈ 27.9); classifier-free guidance pulls toward the prompt by
 * cfg·(1 − that share), so with ComfyUI's cfg 8 a blue image + "a red apple" is mostly blue at 0.05, mixed
 * at 0.5 and red at 1.0. In per-pixel terms the overall colour of a txt2img sample varies by
 * TINY_MEAN_STD/√N (0.125 in latent units for a 256² image), so colours, CFG and negative prompts keep
 * their tests. The spread is global (no locality): a 4-channel inpainting repaint blends the prompt's
 * colour with the image's. The 9-channel inpainting variant keeps its per-pixel model (no mean term).
 */
export const TINY_MEAN_STD = 4;

/**
 * Inpainting variant only: the data std where the mask says "keep" (mask = 0); there x0 is
 * N(masked-image latents, TINY_KEEP_STD²), so the kept region is reproduced almost exactly.
 */
export const TINY_KEEP_STD = 0.02;

/**
 * The VAE decoder's 1×1 linear map M (3 × 4, row-major: RGB row, latent channel column) acting
 * on UNSCALED latents l = z / scaling_factor: sample = clip(M·l + b, −1, 1). Full row rank, so
 * its right pseudo-inverse P = Mᵀ(MMᵀ)⁻¹ satisfies M·P = I₃ (the encoder uses P).
 */
export const TINY_DECODER_MATRIX: readonly (readonly number[])[] = [
  [0.6, 0.25, -0.15, 0.2],
  [0.1, 0.55, 0.3, -0.25],
  [-0.2, 0.15, 0.65, 0.3],
];

/** The decoder's bias b (RGB in [−1, 1]); non-zero so that grey is not the zero latent. */
export const TINY_DECODER_BIAS: readonly number[] = [0.2, -0.1, 0.15];

/**
 * Colour words and their target colours (CSS named colours, 0–255 sRGB bytes). Each is one
 * token `word</w>` in the vocabulary; its embedding row carries the latent that decodes to this
 * colour. "grey" and "gray" are both here.
 */
export const TINY_COLOURS: Readonly<Record<string, readonly [number, number, number]>> = {
  red: [255, 0, 0],
  green: [0, 255, 0],
  blue: [0, 0, 255],
  yellow: [255, 255, 0],
  white: [255, 255, 255],
  black: [0, 0, 0],
  orange: [255, 165, 0],
  purple: [128, 0, 128],
  pink: [255, 192, 203],
  cyan: [0, 255, 255],
  magenta: [255, 0, 255],
  grey: [128, 128, 128],
  gray: [128, 128, 128],
  brown: [165, 42, 42],
};

/**
 * Ordinary prompt words given one token each (besides the colour words). Any other text still
 * tokenizes: the vocabulary holds all 256 byte symbols and their `</w>` forms, as CLIP's does.
 */
export const TINY_PROMPT_WORDS: readonly string[] = [
  'a', 'an', 'the', 'of', 'in', 'on', 'with', 'and', 'at', 'by', 'for', 'is', 'to', 'from',
  'photo', 'picture', 'image', 'painting', 'drawing', 'portrait', 'landscape', 'art', 'style',
  'apple', 'sky', 'grass', 'sun', 'moon', 'star', 'stars', 'cloud', 'clouds', 'sunset', 'cat', 'dog',
  'bird', 'fish', 'horse', 'tree', 'trees', 'flower', 'flowers', 'house', 'car', 'city', 'street',
  'mountain', 'mountains', 'forest', 'field', 'ocean', 'sea', 'water', 'river', 'lake', 'fire',
  'snow', 'night', 'day', 'light', 'dark', 'bright', 'man', 'woman', 'girl', 'boy', 'face',
  'background', 'wall', 'room', 'beautiful', 'detailed', 'high', 'quality', 'best', 'masterpiece',
  'blurry', 'ugly', 'bad', 'lowres', 'low', 'cartoon', 'digital', 'oil', 'canvas', 'square',
  'circle', 'big', 'small', 'very',
];

/** Hidden dims 0..3: the (scaled) latent colour of a colour word. */
export const TINY_COLOUR_DIMS = 4;
/** Hidden dim 4: the "count" dim, 1 for colour words, 0 for every other token. */
export const TINY_COUNT_DIM = 4;
/** Hidden dims 5..H−1: the deterministic pattern of ordinary (non-colour, non-special) tokens. */
export const TINY_PATTERN_START = 5;

/**
 * Largest magnitude of one entry of the pattern readout (hidden pattern dims → latent shift).
 * A single ordinary word shifts mu by about 0.015 in latent space (≈ 0.02 in decoded RGB): a faint, deterministic tint
 * that makes "a cat" and "a dog" differ without hiding any colour word.
 */
export const TINY_PATTERN_READOUT_SCALE = 0.006;

/**
 * Layer k of the fake encoder stack (hidden_states.k) carries colour dims blended toward grey:
 * colour_k = grey + c_k·(colour − grey), pattern_k = c_k·pattern, with
 * c_k = 1 − TINY_LAYER_DESATURATION·(TINY_NUM_LAYERS − k). So clip_skip = 2 (hidden_states.3)
 * gives a slightly less saturated image than the last layer, as a visible but small change.
 */
export const TINY_LAYER_DESATURATION = 0.1;

/** Seed of the deterministic pattern generator (any fixed value; changing it changes the model). */
export const TINY_PATTERN_SEED = 0x7a11c0de;

/** ONNX opset the graphs are written for (onnxruntime-node 1.30 supports it). */
export const TINY_OPSET = 17;
