/*
 * The master's in-process event bus: modules publish Buildbot-style routing
 * keys ("changes/12/new", "builds/5/finished") with the object as the REST
 * API renders it; browser WebSockets on /ws subscribe to paths and receive
 * {"k": key, "m": msg} text frames.  Every event has a sequence number; a
 * subscriber that falls behind by more than its queue cap gets one explicit
 * {"k":"resync","m":{"seq":N}} event instead of a silent gap.
 */
#ifndef KILN_EVENTS_H
#define KILN_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

struct master;
struct events;
struct events_sub;
struct ws_conn;

/* Creates the bus.  The per-subscriber queue cap is KILN_MAX_WS_EVENT_QUEUE,
 * or KILN_TEST_WS_EVENT_QUEUE (bytes, from the environment) when set: only
 * tests shrink it to provoke a resync.  A subscriber over the cap gets a
 * resync event; one that is over it again without having read anything
 * since is closed with 1008 "not reading: event queue full".  Once
 * KILN_TRIM_FREED_BYTES of queues were freed (drops, closed subscribers),
 * a timer on the loop of the first publish calls malloc_trim(0). */
struct events *events_new(void);
/* Frees the bus; subscribers still attached are detached (their sockets
 * are not closed here: http.c owns them).  NULL is fine.  If the trim
 * timer was ever started, the memory is freed by its close callback: run
 * the loop after this (the master does, to close every handle). */
void events_free(struct events *ev);
/* Attached subscribers (http-ws.c refuses /ws past KILN_MAX_WS_EVENT_SUBSCRIBERS). */
size_t events_nsubs(const struct events *ev);
/* Events held behind a row being read (events_publish_row) hold at most
 * KILN_MAX_HELD_EVENTS bytes of messages; past it, an event no in-process
 * listener wants is only numbered and the /ws subscribers resync.  Tests
 * shrink the cap; events_held_dropped counts the events so numbered. */
void events_set_held_cap(struct events *ev, size_t bytes);
uint64_t events_held_dropped(const struct events *ev);

/* Publishes one event to every /ws subscriber with a matching path (the
 * frame is encoded once, copied into each queue).  Takes the caller's
 * reference to msg: it is always released, also when nobody listens; NULL
 * msg is published as {}.  Returns the event's sequence number (first is
 * 1; every event is numbered, listened to or not), or 0 when m->events is
 * NULL (nothing is published) or when it waits behind an event whose row
 * is being read (events_publish_row: it is delivered, in order, after). */
uint64_t events_publish(struct master *m, const char *key, json_t *msg);

/* Whether any /ws subscriber consumes a path matching key: a publisher
 * checks this before building an event's JSON (cheap: no allocation). */
bool events_wanted(const struct master *m, const char *key);
/* Whether some /ws subscriber's path could match a key of pattern's shape,
 * where a "*" segment of pattern stands for any value (an id, an event
 * name), e.g. "logs/" "*" "/" "*" for every log event.  False means no key of
 * that shape is wanted, so a publisher can skip building keys and JSON
 * (still counting its events, events_count). */
bool events_wanted_like(const struct master *m, const char *pattern);
/* Numbers an event nobody listens to without publishing it (sequence
 * numbers count every event); returns its number, 0 when m has no bus
 * or the number waits behind a row being read (as events_publish). */
uint64_t events_count(struct master *m);

/* Publishes "COLLECTION/ID/EVENT" (e.g. "builds", "new") with the row as
 * db_list(res) renders it with the filter IDFIELD=ID (builds' properties
 * as {}, as Buildbot's events carry them).  Call it after the write: the
 * row is read behind it.  Nothing is read when nobody subscribed to a
 * matching path (the event is only numbered).  The read is answered on
 * the loop (issue 14): the bus holds every later event back until then,
 * so events arrive in publishing order.  A row that cannot be read is
 * logged and its event only numbered. */
void events_publish_row(struct master *m, int res, const char *collection, const char *idfield,
			int64_t id, const char *event);
/* The same for keys[0..n) (at most 4) sharing one row, published in that
 * order: only the wanted ones carry it, the others are numbered. */
void events_publish_keys_row(struct master *m, int res, const char *idfield, int64_t id,
			     const char *const *keys, size_t n);

/* Events across masters (issue 14, masters.c): with forwarding on (another
 * master shares the database), every row event (builds, steps, logs,
 * requests, buildsets, changes, workers, builders, masters) goes to the
 * other masters as one db_notify line as well, and events_wanted and
 * events_wanted_like answer true (the keys must be built).  A line
 * received from another master is published here to the /ws subscribers
 * with the row read once it committed (not to the in-process listeners:
 * the reporters of the master that ran it have it); -EINVAL for a line
 * that is not one of ours (it is dropped). */
void events_forward(struct events *ev, bool on);
bool events_forwarding(const struct events *ev);
int events_remote_line(struct master *m, const char *line);
/* Lines from the other masters were lost (a reconnection to the
 * database): every /ws subscriber gets a resync event, as on overflow. */
void events_remote_lost(struct master *m);

/* "buildsets/BSID/new" then "buildrequests/BRID/new" for each of brids. */
void events_buildset_new(struct master *m, int64_t bsid, const int64_t *brids, size_t n);

/* "buildrequests/BRID/complete", then "buildsets/BSID/complete" if bsid
 * (the buildset that request completed; 0: none) is not 0. */
void events_request_complete(struct master *m, int64_t brid, int64_t bsid);

/* Buildbot's subscription matching: path and key are '/'-separated, a
 * segment "*" in path matches exactly one segment of key, others must be
 * equal, and both must have the same number of segments. */
bool events_path_match(const char *path, const char *key);

/* A browser /ws connection (http.c): attach on open, hand it every text
 * message, detach on close.  ev may be NULL (no events are delivered then,
 * control commands are still answered). */
struct events_sub *events_sub_new(struct events *ev, struct ws_conn *c);
/* Handles one control frame (ping, startConsuming, stopConsuming) and
 * queues the reply on the connection. */
void events_sub_message(struct events_sub *s, const char *text, size_t len);
/* The work of events_sub_message() without the connection: applies the
 * message to s and returns the compact JSON reply (caller frees), or NULL
 * if jansson cannot encode it.  s may have no connection (fuzzing). */
char *events_sub_reply(struct events_sub *s, const char *text, size_t len);
/* How many paths s consumes (at most KILN_MAX_WS_SUBSCRIPTIONS). */
size_t events_sub_npaths(const struct events_sub *s);
/* Detaches and frees; NULL is fine. */
void events_sub_free(struct events_sub *s);

/* In-process listeners (the reporters, master/reporters/): fn(ud, key, msg)
 * for every published event whose key matches path (events_path_match),
 * after the /ws subscribers got it; msg is borrowed for the call.  A
 * listener makes events_publish_row read its row as a subscriber does.
 * Loop thread only; events_free drops the listeners left. */
typedef void (*events_listener_fn)(void *ud, const char *key, json_t *msg);
void events_listen(struct events *ev, const char *path, events_listener_fn fn, void *ud);
/* Removes the listener with fn and ud; NULL ev is fine. */
void events_unlisten(struct events *ev, events_listener_fn fn, void *ud);

#endif
