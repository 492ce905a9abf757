// The grid (/grid): builders (rows) x recent changes (columns, newest at
// the left); each cell is the builder's latest build made from that
// change.  The console's data (changes x builds, console.js), transposed;
// both axes virtualised; filters in the URL (?name=&tag=&branch=).
import { useRef } from 'preact/hooks';
import { html, when } from './util.js';
import { useViewport, span } from './virtual.js';
import { readFilters, builderMatches, Filters, useMatrix, Cell, colLines, firstLine, narrowed } from './console.js';

const ROW_H = 26;
const COL_W = 64;
const HEAD_H = 44; // revision and author of each change
const NAME_W = 200;

export function Grid() {
  const f = readFilters();
  const data = useMatrix(f);
  const box = useRef(null);
  const vp = useViewport(box);
  const nameW = narrowed(NAME_W, vp.w); // a phone keeps room for the cells
  const shown = data.builders.filter((b) => builderMatches(b, f));
  const tags = [...new Set(data.builders.flatMap((b) => b.tags ?? []))].sort();
  const [r0, r1] = span(vp.y, vp.h - HEAD_H, shown.length, ROW_H);
  const [c0, c1] = span(vp.x, vp.w - nameW, data.changes.length, COL_W);
  const cols = data.changes.slice(c0, c1);
  const width = nameW + data.changes.length * COL_W;
  const height = HEAD_H + shown.length * ROW_H;

  return html`<section class="classic grid">
    <h1>Grid</h1>
    <${Filters} f=${f} tags=${tags} />
    ${data.error && html`<p class="error" role="alert">Cannot load: ${data.error}</p>`}
    ${!data.loaded && !data.error && html`<p class="dim">Loading…</p>`}
    ${data.loaded && data.changes.length === 0 && html`<p class="dim">No changes yet.</p>`}
    <div class="vbox" ref=${box} data-rows=${shown.length} data-cols=${data.changes.length}>
      <div class="vplane" style=${`width:${width}px;height:${height}px`}>
        <div class="vhead" style=${`height:${HEAD_H}px;width:${width}px`}>
          ${cols.map((c, i) => html`<a class="colchange" key=${c.changeid} data-change=${c.changeid}
            href=${`/changes/${c.changeid}`}
            style=${`left:${nameW + (c0 + i) * COL_W}px;width:${COL_W}px;height:${HEAD_H}px`}
            title=${`${c.revision ?? ''}\n${c.author}\n${when(c.when_timestamp)}\n\n${firstLine(c.comments)}`}>
            <code>${(c.revision ?? '?').slice(0, 7)}</code><br /><span class="dim">${(c.author ?? '').split(' <')[0]}</span>
          </a>`)}
        </div>
        ${shown.slice(r0, r1).map((b, i) => html`<div class="vrow" key=${b.builderid} data-builder=${b.name}
            style=${`top:${HEAD_H + (r0 + i) * ROW_H}px;height:${ROW_H}px;width:${width}px;${colLines(nameW, COL_W)}`}>
          <div class="info" style=${`width:${nameW}px`}>
            <a href=${`/builders/${encodeURIComponent(b.name)}`}>${b.name}</a></div>
          ${cols.map((c, j) => {
            const x = data.cell(c, b.builderid);
            return x && html`<${Cell} key=${c.changeid} b=${x} builder=${b} rev=${c.revision} change=${c.changeid}
              x=${nameW + (c0 + j) * COL_W + 4} y=${4} w=${COL_W - 8} h=${ROW_H - 8} />`;
          })}
        </div>`)}
      </div>
    </div>
    ${data.more && html`<p><button type="button" onClick=${() => data.load(data.page)}>Older changes</button></p>`}
  </section>`;
}
