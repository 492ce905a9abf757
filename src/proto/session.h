/*
 * Request/response correlation for one worker-protocol connection, used by
 * both the master and kiln-worker.  Transport-agnostic: the caller sends the
 * bytes proto_session_request() packs and feeds every incoming
 * {op:"response"} to proto_session_handle_response().  Each side numbers its
 * own requests from 0 per connection (PROTOCOL.md §3.3).
 */
#ifndef KILN_PROTO_SESSION_H
#define KILN_PROTO_SESSION_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

/*
 * Called exactly once per request.  status 0: result is the reply's result
 * (a nil object if the reply had none); KILN_EPROTO: the peer answered
 * is_exception and result is its error object (normally a str); any other
 * negative: the connection was lost or the request timed out, result NULL.
 * result is borrowed for the duration of the call only.
 */
typedef void (*proto_reply_fn)(void *ud, int status, const msgpack_object *result);

struct proto_session;

struct proto_session *proto_session_new(void);
/* NULL-safe; does NOT call the pending callbacks (use fail_all first). */
void proto_session_free(struct proto_session *s);

/*
 * Starts a request: appends to e a map header of 2 + nfields entries, then
 * "op": op and "seq_number": <seq>; the caller packs nfields more key/value
 * pairs and sends e's bytes.  fn(ud, ...) is registered for the reply.
 * Returns the seq (>= 0), or -EBUSY with nothing packed when
 * KILN_MAX_PENDING_REQUESTS requests are already unanswered.
 */
int64_t proto_session_request(struct proto_session *s, struct proto_enc *e, const char *op,
			      uint32_t nfields, proto_reply_fn fn, void *ud);

/*
 * Handles an incoming message whose op is "response": calls the callback
 * registered for m->seq and forgets it.  Returns 0, or KILN_EPROTO if no
 * request with that seq is pending (or m is not a response).  The entry is
 * removed before the callback runs, and s is not touched after it, so the
 * callback may make new requests or even free s.
 */
int proto_session_handle_response(struct proto_session *s, const struct proto_msg *m);

/*
 * Fails every pending request with status err (each callback called once,
 * in seq order).  Requests started from those callbacks stay pending; s is
 * not touched after the last callback, so a callback may free s.
 */
void proto_session_fail_all(struct proto_session *s, int err);

size_t proto_session_pending(const struct proto_session *s);
/* The seq the next request will get. */
int64_t proto_session_next_seq(const struct proto_session *s);

#endif
