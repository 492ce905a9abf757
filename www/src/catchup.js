// A view's first load, in parallel with the /ws connect, loaded once.
//
// live.js tells listeners "refetch" once /ws is subscribed to everything
// (and after every reconnect and resync).  The race: an event that happens
// after the master computed an answer and before it subscribed this page is
// in no answer and never sent to the page.  The rule used here (correct,
// and with no second load on the first connect): a view sends at once only
// the requests that no event changes (a builder by name, the builder list:
// there are no builder events, a new builder shows up through a build event
// the view does not know and reloads), and the requests whose answers events
// change (builds, requests, steps, workers, numbers) once the subscription
// is confirmed: the master sends the confirmation only after the
// subscription holds, so every such answer was computed after it and every
// later event reaches the page; events that arrive while the answers are on
// their way are applied on top of them by the view.  The first "refetch" then
// only opens the gate (takeAck() returns true: no reload); later ones
// (reconnects, resyncs) reload as before.  When the first connect fails the
// gate opens too, so that the page shows what REST has; the reconnect's
// "refetch" then reloads.  Already subscribed (a view opened from another
// one): the gate is open from the start.
import { isOnline, onStatus } from './live.js';

export function subscribed() {
  let state = isOnline() ? 'open' : 'waiting';
  let open;
  const wait = new Promise((res) => { open = res; });
  let off = null;
  const openNow = (why) => {
    if (state !== 'waiting') return;
    state = why;
    open();
    off?.();
  };
  if (state === 'open') open();
  else {
    off = onStatus((s) => {
      if (!s.online && s.retryAt) openNow('failed'); // the first connect failed
    });
    if (state !== 'waiting') off();
  }
  return {
    wait, // resolves once the event-driven requests may be sent
    // for the view's "refetch": true if this is the first subscription,
    // which only opens the gate (the load under way is complete after it)
    takeAck() {
      if (state !== 'waiting') return false;
      openNow('acked');
      return true;
    },
    close() {
      off?.();
    },
  };
}
