// seedrandom's Alea generator alone: the package's main module also reaches for Node's crypto, which a browser
// bundle must not. Only what normal.ts uses is declared.
declare module 'seedrandom/lib/alea.js' {
  interface AleaGenerator {
    (): number;
    state(): { c: number; s0: number; s1: number; s2: number };
  }
  const alea: (seed: string, options: { state: true }) => AleaGenerator;
  export default alea;
}
