/** Vite's `?raw` imports (the text of a file), used to compare the D1 migration with the store's schema. */
declare module '*.sql?raw' {
  const text: string;
  export default text;
}
