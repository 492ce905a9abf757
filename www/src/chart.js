// Charts of a builder's numbers over its builds, drawn with uPlot.  This
// module is loaded only by pages that show charts (builder.js imports it
// with import()): esbuild puts it and uPlot in their own chunk, outside the
// core bundle.  It imports nothing of the app, so no shared chunk is made.
import uPlot from 'uplot';

const HEIGHT = 180;

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

// Draws one series into el: points [{x, y, label, href}] in x order, x a
// build number (or epoch seconds with time: true).  Hovering a point names
// its build in el's caption link (keyboard users get the same link: Tab);
// a click on the plot follows it.  Returns a function that removes the chart.
export function drawChart(el, { title, unit, points, time = false, navigate }) {
  const caption = document.createElement('p');
  caption.className = 'chart-caption';
  const name = document.createElement('b');
  name.textContent = title;
  const pick = document.createElement('a');
  pick.className = 'chart-pick';
  caption.append(name, ' ', pick);
  const plot = document.createElement('div');
  el.replaceChildren(caption, plot);

  const last = points[points.length - 1];
  const show = (i) => {
    const p = points[i];
    if (!p) return;
    pick.textContent = `${p.label}: ${fmt(p.y)}${unit ? ` ${unit}` : ''}`;
    pick.href = p.href;
    pick.dataset.build = p.label;
  };
  const fmt = (v) => (Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toPrecision(3));
  if (last) show(points.length - 1);

  const line = cssVar('--run', '#0969da');
  const axis = { stroke: cssVar('--dim', '#5c6670'), grid: { stroke: cssVar('--line', '#d8dde3'), width: 1 } };
  const opts = {
    width: Math.max(200, el.clientWidth || 600),
    height: HEIGHT,
    legend: { show: false },
    scales: { x: { time } },
    // build numbers are whole: ticks at 1, 2, 5, 10, ... builds apart
    axes: [time ? axis : { ...axis, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 1e4, 2e4, 5e4, 1e5] },
      // uPlot's own labels round tiny values (steps of 0.0001 s) to "0": 3 significant digits
      { ...axis, size: 60, values: (_u, ticks) => ticks.map((v) => String(+v.toPrecision(3))) }],
    cursor: { points: { size: 8 } },
    series: [{}, { label: title, stroke: line, width: 2, points: { show: points.length < 60, size: 5, fill: line } }],
    hooks: {
      setCursor: [(u) => {
        if (u.cursor.idx != null) show(u.cursor.idx);
      }],
    },
  };
  const u = new uPlot(opts, [points.map((p) => p.x), points.map((p) => p.y)], plot);
  const onClick = () => {
    const p = points[u.cursor.idx];
    if (p && navigate) navigate(p.href);
  };
  u.over.addEventListener('click', onClick);
  const ro = new ResizeObserver(() => {
    const w = Math.max(200, el.clientWidth);
    if (w !== u.width) u.setSize({ width: w, height: HEIGHT });
  });
  ro.observe(el);
  return () => {
    ro.disconnect();
    u.over.removeEventListener('click', onClick);
    u.destroy();
  };
}
