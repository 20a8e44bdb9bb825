/**
 * Browser module /playground/mask-painter.js: Edit mode's brush. A canvas laid over the uploaded image
 * at the image's own pixel size; pointer drags paint (or erase) round strokes whose width is the brush
 * size in image pixels. Strokes are kept as a list, so Undo drops the last one and repaints the rest.
 *
 * Two exports of the painted area, both PNGs the size of the image:
 * - toSavedMaskBlob(): Save Mask's file — white (opaque) where painted, black (opaque) elsewhere, the
 *   usual "white = repaint" mask (also what the async inpainting API takes as mask_image_base64);
 * - toOpenAiMaskBlob(): the mask sent to POST /v1/images/edits — OpenAI's convention, fully transparent
 *   (alpha 0) where painted, opaque black elsewhere.
 *
 * Kept as text (String.raw, so no backticks or dollar-brace inside) because the Worker serves it as is.
 */
export const MASK_PAINTER_JS = String.raw`// Brush, eraser and undo on a canvas over the image being edited.

const PAINT_COLOUR = 'rgb(255, 45, 120)';

function canvasBlob(canvas) {
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('The browser could not encode the mask as PNG.'))), 'image/png');
  });
}

/**
 * Paints on one canvas element. Fires a "maskchange" event on the canvas after every stroke, undo and
 * clear (detail: {strokes: number, painted: boolean}).
 */
export class MaskPainter {
  /** @param canvas the overlay HTMLCanvasElement (its CSS box may be scaled; drawing maps to pixels) */
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext('2d', { willReadFrequently: true });
    this.strokes = [];
    this.active = null;
    this.tool = 'brush';
    this.brushSize = 32;
    canvas.addEventListener('pointerdown', (event) => this.onPointerDown(event));
    canvas.addEventListener('pointermove', (event) => this.onPointerMove(event));
    canvas.addEventListener('pointerup', (event) => this.onPointerUp(event));
    canvas.addEventListener('pointercancel', (event) => this.onPointerUp(event));
  }

  /** Start over on an image of width x height pixels (drops every stroke). */
  reset(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.strokes = [];
    this.active = null;
    this.render();
    this.changed();
  }

  /** "brush" paints the area to change; "eraser" removes paint. */
  setTool(tool) {
    this.tool = tool === 'eraser' ? 'eraser' : 'brush';
  }

  /** Brush diameter in image pixels. */
  setBrushSize(size) {
    this.brushSize = Math.max(1, Number(size) || 1);
  }

  /** Remove the last stroke. Returns false when there was none. */
  undo() {
    if (this.strokes.length === 0) return false;
    this.strokes.pop();
    this.render();
    this.changed();
    return true;
  }

  /** Remove every stroke. */
  clear() {
    this.strokes = [];
    this.render();
    this.changed();
  }

  /** True when any pixel is painted (erased paint does not count). */
  hasPaint() {
    if (this.canvas.width === 0 || this.canvas.height === 0) return false;
    const pixels = this.context.getImageData(0, 0, this.canvas.width, this.canvas.height).data;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
    return false;
  }

  /** Save Mask's PNG: white where painted, black elsewhere, both opaque. */
  toSavedMaskBlob() {
    const out = this.blankCanvas();
    const context = out.getContext('2d');
    context.drawImage(this.canvas, 0, 0);
    context.globalCompositeOperation = 'source-in';
    context.fillStyle = '#ffffff';
    context.fillRect(0, 0, out.width, out.height);
    context.globalCompositeOperation = 'destination-over';
    context.fillStyle = '#000000';
    context.fillRect(0, 0, out.width, out.height);
    return canvasBlob(out);
  }

  /** The mask for /v1/images/edits (OpenAI convention): transparent where painted, opaque elsewhere. */
  toOpenAiMaskBlob() {
    const out = this.blankCanvas();
    const context = out.getContext('2d');
    context.fillStyle = '#000000';
    context.fillRect(0, 0, out.width, out.height);
    context.globalCompositeOperation = 'destination-out';
    context.drawImage(this.canvas, 0, 0);
    return canvasBlob(out);
  }

  blankCanvas() {
    const out = document.createElement('canvas');
    out.width = this.canvas.width;
    out.height = this.canvas.height;
    return out;
  }

  /** Pointer position in image pixels (the canvas may be displayed smaller or larger). */
  point(event) {
    const box = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * this.canvas.width) / box.width,
      y: ((event.clientY - box.top) * this.canvas.height) / box.height,
    };
  }

  onPointerDown(event) {
    if (event.button !== 0 || this.canvas.width === 0) return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.active = { tool: this.tool, size: this.brushSize, points: [this.point(event)] };
    this.strokes.push(this.active);
    this.drawStroke(this.active);
  }

  onPointerMove(event) {
    if (!this.active) return;
    this.active.points.push(this.point(event));
    this.drawStroke(this.active, this.active.points.length - 2);
  }

  onPointerUp(event) {
    if (!this.active) return;
    this.active = null;
    if (this.canvas.hasPointerCapture(event.pointerId)) this.canvas.releasePointerCapture(event.pointerId);
    this.changed();
  }

  render() {
    this.context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    for (const stroke of this.strokes) this.drawStroke(stroke);
  }

  /** Draw a stroke from point index "from" on (all of it by default). */
  drawStroke(stroke, from) {
    const context = this.context;
    const points = stroke.points;
    const start = Math.max(0, from || 0);
    context.save();
    context.globalCompositeOperation = stroke.tool === 'eraser' ? 'destination-out' : 'source-over';
    context.fillStyle = PAINT_COLOUR;
    context.strokeStyle = PAINT_COLOUR;
    context.lineWidth = stroke.size;
    context.lineCap = 'round';
    context.lineJoin = 'round';
    if (points.length === 1) {
      context.beginPath();
      context.arc(points[0].x, points[0].y, stroke.size / 2, 0, Math.PI * 2);
      context.fill();
    } else {
      context.beginPath();
      context.moveTo(points[start].x, points[start].y);
      for (let i = start + 1; i < points.length; i += 1) context.lineTo(points[i].x, points[i].y);
      context.stroke();
    }
    context.restore();
  }

  changed() {
    const detail = { strokes: this.strokes.length, painted: this.strokes.length > 0 && this.hasPaint() };
    this.canvas.dispatchEvent(new CustomEvent('maskchange', { detail: detail }));
  }
}
`;
