// Virtualisation for long axes: only what is visible (plus a little
// overscan) is in the DOM.  Two pieces, both tiny:
//
//   useViewport(ref) -> { x, y, w, h }
//     the scroll offsets and client size of the scrolling element ref
//     points at; updated on its scroll events (coalesced to one per frame)
//     and when it is resized.  No timers: nothing runs while nobody scrolls.
//
//   span(offset, extent, count, size, overscan = 4) -> [first, end)
//     the indexes of equal-sized items (size px each, count of them) that
//     intersect [offset, offset + extent), widened by overscan items.
//
// A view lays its items out absolutely inside a box of the full size
// (count * size) and renders only items first..end-1 of each axis.
import { useEffect, useState } from 'preact/hooks';

export function useViewport(ref) {
  const [vp, setVp] = useState({ x: 0, y: 0, w: 0, h: 0 });
  useEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    let frame = 0;
    const read = () => {
      frame = 0;
      setVp({ x: el.scrollLeft, y: el.scrollTop, w: el.clientWidth, h: el.clientHeight });
    };
    const later = () => {
      if (!frame) frame = requestAnimationFrame(read);
    };
    read();
    el.addEventListener('scroll', later, { passive: true });
    const ro = new ResizeObserver(later);
    ro.observe(el);
    return () => {
      el.removeEventListener('scroll', later);
      ro.disconnect();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [ref.current]);
  return vp;
}

export function span(offset, extent, count, size, overscan = 4) {
  const first = Math.max(0, Math.floor(offset / size) - overscan);
  const end = Math.min(count, Math.ceil((offset + Math.max(extent, size)) / size) + overscan);
  return [first, Math.max(first, end)];
}
