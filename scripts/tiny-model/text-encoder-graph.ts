/**
 * text_encoder/model.onnx of the tiny model: a lookup table per "layer", no attention.
 *
 * Inputs:  input_ids        int32 or int64 [batch, sequence]   (CLIP ids; sequence 77 for SD)
 * Outputs: last_hidden_state float [batch, sequence, H]        (H = TINY_HIDDEN_SIZE = 32)
 *          pooler_output     float [batch, H]                  Σ over the sequence of last_hidden_state
 *          hidden_states.0 … hidden_states.L float [batch, sequence, H]  (when hiddenStates; L = TINY_NUM_LAYERS,
 *                            hidden_states.L = last_hidden_state, as Optimum names a CLIP export's hidden states)
 * "float" is float32, or float16 for a float16 model. Rows: embedding-table.ts.
 * pooler_output differs from CLIP (which takes the state at the eos position, an all-zero row
 * here): without attention, the sum over tokens is the one summary that depends on the prompt.
 */
import { ELEM, OnnxGraphBuilder } from './onnx-graph-builder';
import { TINY_HIDDEN_SIZE, TINY_NUM_LAYERS } from './constants';

/** Options of `buildTextEncoderGraph`. */
export interface TextEncoderGraphOptions {
  /** Embedding tables from `tinyEmbeddingTables` (TINY_NUM_LAYERS + 1 tables, each [vocab, H]). */
  tables: readonly Float32Array[];
  vocabSize: number;
  inputIdsType: 'int32' | 'int64';
  float16: boolean;
  hiddenStates: boolean;
}

/** Builds the text encoder graph (see the module docstring for inputs and outputs). */
export function buildTextEncoderGraph(options: TextEncoderGraphOptions): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder('tiny_text_encoder', { float16: options.float16 });
  const h = TINY_HIDDEN_SIZE;
  const ids = g.input('input_ids', options.inputIdsType === 'int32' ? ELEM.INT32 : ELEM.INT64, ['batch', 'sequence']);
  const hiddenDims = ['batch', 'sequence', h];
  const lastTable = g.floatTypedConstant(`embedding_layer_${TINY_NUM_LAYERS}`, [options.vocabSize, h], options.tables[TINY_NUM_LAYERS]);
  g.node('Gather', [lastTable, ids], { axis: 0 }, 'last_hidden_state');
  g.output('last_hidden_state', g.floatType, hiddenDims);
  const last32 = g.floatType === ELEM.FLOAT ? 'last_hidden_state' : g.node('Cast', ['last_hidden_state'], { to: ELEM.FLOAT });
  const axes = g.int64Constant('sequence_axis', [1], [1]);
  g.floatOutput('pooler_output', g.node('ReduceSum', [last32, axes], { keepdims: 0 }), ['batch', h]);
  if (options.hiddenStates) {
    for (let k = 0; k < TINY_NUM_LAYERS; k++) {
      const table = g.floatTypedConstant(`embedding_layer_${k}`, [options.vocabSize, h], options.tables[k]);
      g.node('Gather', [table, ids], { axis: 0 }, `hidden_states.${k}`);
      g.output(`hidden_states.${k}`, g.floatType, hiddenDims);
    }
    g.node('Identity', ['last_hidden_state'], {}, `hidden_states.${TINY_NUM_LAYERS}`);
    g.output(`hidden_states.${TINY_NUM_LAYERS}`, g.floatType, hiddenDims);
  }
  return g;
}
