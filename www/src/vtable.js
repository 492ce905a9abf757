// A virtual table on the page's own scroll (the window): of COUNT rows of
// one height, only those in view plus an overscan margin are rendered;
// padding above and below the table stands for the others, so the page's
// scroll bar has its full length.  No timers: the window's scroll and resize
// events (coalesced to one per frame) are all that runs, and only while
// somebody scrolls.
//
//   useWindowRows(ref, count, rowH, overscan) -> { first, end, top, bottom }
//     ref points at the element the padding is on (its top is row 0's top,
//     near enough: the table's head is within the overscan); rows first to
//     end - 1 are rendered, top and bottom are the paddings (px).
//   useRowHeight(tbodyRef, guess) -> the rendered height of one row (px):
//     measured from a rendered row after each render (a font, a phone's
//     width), guess until then.
//   scrollRowIntoView(ref, i, rowH)
//     scrolls the window the least so that row i is in view (keyboard moves).
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import { span } from './virtual.js';

function viewport(el) {
  // how far the list's top is above the window's top, and the window's height
  return { y: el ? -el.getBoundingClientRect().top : 0, h: window.innerHeight };
}

export function useWindowRows(ref, count, rowH, overscan = 10) {
  const [vp, setVp] = useState({ y: 0, h: window.innerHeight || 800 });
  useEffect(() => {
    let frame = 0;
    const read = () => {
      frame = 0;
      const v = viewport(ref.current);
      setVp((old) => (old.y === v.y && old.h === v.h ? old : v));
    };
    const later = () => {
      if (!frame) frame = requestAnimationFrame(read);
    };
    read();
    addEventListener('scroll', later, { passive: true });
    addEventListener('resize', later, { passive: true });
    return () => {
      removeEventListener('scroll', later);
      removeEventListener('resize', later);
      if (frame) cancelAnimationFrame(frame);
    };
  }, []);
  const [first, end] = span(vp.y, vp.h, count, rowH, overscan);
  return { first, end, top: first * rowH, bottom: Math.max(0, (count - end) * rowH) };
}

export function useRowHeight(tbodyRef, guess) {
  const [h, setH] = useState(guess);
  useLayoutEffect(() => {
    const row = tbodyRef.current?.rows?.[0];
    const got = row ? row.getBoundingClientRect().height : 0;
    if (got > 0 && Math.abs(got - h) > 0.5) setH(got);
  });
  return h;
}

export function scrollRowIntoView(ref, i, rowH, headH = 0) {
  const el = ref.current;
  if (!el) return;
  const top = el.getBoundingClientRect().top + headH + i * rowH; // in the window's coordinates
  if (top < headH) window.scrollBy(0, top - headH);
  else if (top + rowH > window.innerHeight) window.scrollBy(0, top + rowH - window.innerHeight);
}
