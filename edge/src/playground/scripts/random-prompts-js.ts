/**
 * Browser module /playground/random-prompts.js: the "random prompt" button's list and picker (pure;
 * the random source is a parameter). Most prompts name a colour, which the embedded tiny-analytic model
 * visibly follows (docs/architecture.md, "The embedded default").
 *
 * Kept as text (String.raw, so no backticks or dollar-brace inside) because the Worker serves it as is.
 */
export const RANDOM_PROMPTS_JS = String.raw`// Prompts for the random-prompt button.

export const RANDOM_PROMPTS = [
  'a red apple on a wooden table, soft morning light',
  'a blue sky over a calm sea, wide angle',
  'green grass on rolling hills, late afternoon',
  'a yellow sunflower field under a clear sky',
  'a white lighthouse at dusk, long exposure',
  'a black cat sleeping on a windowsill',
  'a red fox in fresh snow, telephoto',
  'a blue glass bottle with a purple galaxy inside',
  'a green forest path in the rain, volumetric light',
  'a yellow taxi on a wet city street at night',
  'a white porcelain teapot, studio photograph',
  'a black and white portrait of an old sailor',
  'a red hot air balloon over a canyon',
  'a blue whale under the ocean surface, sun rays',
  'a green parrot on a branch, macro photograph',
  'a yellow lemon cut in half, high detail',
  'an isometric cozy bookshop, watercolour',
  'a snow-covered mountain village at night, warm windows',
  'a steaming cup of coffee next to an open notebook',
  'a futuristic train crossing a bridge, concept art',
];

/**
 * A prompt from RANDOM_PROMPTS that differs from the current one.
 * @param random a function returning [0, 1) (Math.random in the page)
 * @param current the prompt in the box now (never returned again, so the button always changes it)
 */
export function pickRandomPrompt(random, current) {
  const choices = RANDOM_PROMPTS.filter((prompt) => prompt !== current);
  return choices[Math.min(choices.length - 1, Math.floor(random() * choices.length))];
}
`;
