/*
 * Output shaping for kiln-worker: a per-stream line splitter (newline
 * normalisation as Buildbot's default newline_re, line-length cuts, UTF-8
 * repair) and the update batcher that merges consecutive lines of one stream
 * into line-info triples [text, [newline offsets], [times]] and packs them as
 * an `update` args array within a weight budget (PROTOCOL.md §3.8).
 * Pure data structures: no loop, no I/O.
 */
#ifndef KILN_WORKER_LINES_H
#define KILN_WORKER_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct proto_enc;

/* Called once per complete line; line ends in '\n' and is valid UTF-8; t is
 * when the line's first byte arrived.  line is only valid during the call (it
 * may point into the fed data or into the splitter) and is not NUL-terminated. */
typedef void (*lines_emit_fn)(void *ud, const char *line, size_t len, double t);

struct lines {
	struct buf cur; /* the current (incomplete) line, normalised, raw bytes */
	struct buf out; /* scratch for a repaired line (invalid UTF-8), reused */
	char esc[24];   /* a possible newline sequence being matched (\r or ESC[...) */
	size_t esc_len;
	bool in_bs;      /* inside a run of backspaces (one run = one newline) */
	double cur_time; /* arrival of cur's first byte */
	size_t max_line; /* cut lines longer than this (bytes, >= 4) */
	lines_emit_fn emit;
	void *ud;
};

void lines_init(struct lines *l, size_t max_line, lines_emit_fn emit, void *ud);
void lines_release(struct lines *l);
/* Feeds raw output that arrived at time t; emits every line completed by it. */
void lines_feed(struct lines *l, const void *data, size_t len, double t);
/* End of stream: emits a held-back partial line with '\n' added. */
void lines_finish(struct lines *l);
/* Output arrived on another stream: emits a held-back partial line with
 * '\n' added, unless a possible newline sequence is pending. */
void lines_cut_partial(struct lines *l);

/* Appends p[0..n) to out as valid UTF-8, each invalid byte replaced by U+FFFD
 * (at most 3n bytes).  Returns 0, or -E2BIG past out's cap (out is then
 * failed and empty, as buf.h does). */
BUF_MUST_CHECK int lines_utf8_repair(struct buf *out, const char *p, size_t n);
/* Packs p[0..n) as a msgpack string, invalid UTF-8 repaired as above (names
 * and values from the disk or the environment). */
void lines_pack_repaired(struct proto_enc *e, const char *p, size_t n);
/* True if p[0..n) is valid UTF-8 as Python's strict decoder sees it. */
bool lines_utf8_valid(const char *p, size_t n);

/*
 * The update batcher.  Items keep their order; a line for the same key (and
 * log name) as the last item is merged into it.  Weight follows Buildbot:
 * text length + 16 per line for output, 20 for any other item; when adding
 * would pass max_weight the batch is flushed first through flush(ud), which
 * must call batch_pack() (or batch_clear()).
 */
struct batch_item;
typedef void (*batch_flush_fn)(void *ud);

struct batch {
	struct batch_item *items; /* owned */
	size_t n, cap;
	size_t weight, max_weight;
	batch_flush_fn flush;
	void *ud;
};

void batch_init(struct batch *b, size_t max_weight, batch_flush_fn flush, void *ud);
void batch_release(struct batch *b);
bool batch_empty(const struct batch *b);
/* An output line (ending in '\n') for key "stdout"/"stderr"/"header", or for
 * key "log" with logname set. */
void batch_add_line(struct batch *b, const char *key, const char *logname, const char *line,
		    size_t len, double t);
/* Convenience: header text made of whole lines (split at '\n', '\n' added at end if missing). */
void batch_add_text(struct batch *b, const char *key, const char *text, double t);
void batch_add_int(struct batch *b, const char *key, int64_t v);
void batch_add_double(struct batch *b, const char *key, double v);
/* Any value, already msgpack-encoded (copied).  -E2BIG (nothing added) if it
 * is over KILN_MAX_WS_FRAME. */
BUF_MUST_CHECK int batch_add_packed(struct batch *b, const char *key, const void *packed,
				    size_t len);
/* Packs the items as the update's args array into e and empties the batch. */
void batch_pack(struct batch *b, struct proto_enc *e);
void batch_clear(struct batch *b);
/* Flushes through the callback if not empty. */
void batch_flush(struct batch *b);

#endif
