// ANSI SGR escape codes ("\x1b[...m") of one line split into runs, in the
// shape log.js renders: { content, fg, bg, fg_truecolor, bg_truecolor,
// decorations }.  fg/bg are class names: "ansi-red", "ansi-bright-red",
// "ansi-palette-N" (256 colours) or "ansi-truecolor" (then *_truecolor is
// "r, g, b").  Other escape sequences (cursor moves, OSC titles) are
// dropped.  Kiln's own: anser (CommonJS) pulled esbuild's interop helpers
// into a chunk the core bundle had to import.
const NAMES = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white'];
const DECOS = { 1: 'bold', 2: 'dim', 3: 'italic', 4: 'underline', 5: 'blink', 7: 'reverse', 8: 'hidden', 9: 'strikethrough' };
const UNDECO = { 22: ['bold', 'dim'], 23: ['italic'], 24: ['underline'], 25: ['blink'], 27: ['reverse'], 28: ['hidden'], 29: ['strikethrough'] };

// ESC [ params final-byte, or OSC (ESC ] ... BEL or ESC \), or a lone ESC + one byte
const ESC = /\x1b(?:\[([0-9;:?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_]?)/g;

// Applies one SGR parameter list to state s.
function sgr(s, params) {
  const p = params === '' ? [0] : params.split(/[;:]/).map((x) => (x === '' ? 0 : +x));
  for (let i = 0; i < p.length; i++) {
    const n = p[i];
    if (n === 0) {
      s.fg = s.bg = s.fgt = s.bgt = null;
      s.deco = [];
    } else if (DECOS[n]) {
      if (!s.deco.includes(DECOS[n])) s.deco = [...s.deco, DECOS[n]];
    } else if (UNDECO[n]) {
      s.deco = s.deco.filter((d) => !UNDECO[n].includes(d));
    } else if (n >= 30 && n <= 37) [s.fg, s.fgt] = [`ansi-${NAMES[n - 30]}`, null];
    else if (n >= 90 && n <= 97) [s.fg, s.fgt] = [`ansi-bright-${NAMES[n - 90]}`, null];
    else if (n >= 40 && n <= 47) [s.bg, s.bgt] = [`ansi-${NAMES[n - 40]}`, null];
    else if (n >= 100 && n <= 107) [s.bg, s.bgt] = [`ansi-bright-${NAMES[n - 100]}`, null];
    else if (n === 39) [s.fg, s.fgt] = [null, null];
    else if (n === 49) [s.bg, s.bgt] = [null, null];
    else if (n === 38 || n === 48) {
      let cls = null;
      let rgb = null;
      if (p[i + 1] === 5 && i + 2 < p.length) {
        const c = p[i + 2];
        i += 2;
        if (c < 8) cls = `ansi-${NAMES[c]}`;
        else if (c < 16) cls = `ansi-bright-${NAMES[c - 8]}`;
        else if (c < 256) cls = `ansi-palette-${c}`;
      } else if (p[i + 1] === 2 && i + 4 < p.length) {
        const [r, g, b] = p.slice(i + 2, i + 5).map((v) => Math.min(255, v));
        i += 4;
        cls = 'ansi-truecolor';
        rgb = `${r}, ${g}, ${b}`;
      } else break; // malformed: ignore the rest
      if (n === 38) [s.fg, s.fgt] = [cls, rgb];
      else [s.bg, s.bgt] = [cls, rgb];
    }
  }
}

export function ansiToJson(text) {
  const out = [];
  const s = { fg: null, bg: null, fgt: null, bgt: null, deco: [] };
  const push = (content) => {
    if (content)
      out.push({ content, fg: s.fg, bg: s.bg, fg_truecolor: s.fgt, bg_truecolor: s.bgt, decorations: s.deco });
  };
  let last = 0;
  for (const m of text.matchAll(ESC)) {
    push(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[2] === 'm' && m[1] !== undefined && !m[1].includes('?')) sgr(s, m[1]);
  }
  push(text.slice(last));
  return out;
}
