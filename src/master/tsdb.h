/*
 * Pushing recorded numbers to a time-series store over TCP: InfluxDB line
 * protocol or Graphite plaintext (master.lua's metrics_push).  A libuv
 * client on the master's loop: the host is resolved on libuv's thread pool,
 * connects with capped exponential backoff and reconnects after any error,
 * and points wait in a bounded queue (the oldest dropped when it is full,
 * counted and logged at most once per KILN_TSDB_DROP_LOG_MS).  Nothing here
 * blocks the loop; a store that is down or does not read costs at most the
 * queue's memory.  Points in a write that failed are sent again after the
 * reconnect (a store keeps one value per series and time, so a repeat is
 * harmless).
 */
#ifndef KILN_MASTER_TSDB_H
#define KILN_MASTER_TSDB_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config/config.h"

struct buf;
struct tsdb;

/*
 * Starts the client on loop with the settings of cfg (copied): resolving
 * and connecting begin at once.  0 and *ret, or a negative code (a libuv
 * handle could not be set up).  Loop thread only, like every call below.
 */
int tsdb_start(uv_loop_t *loop, const struct config_metrics_push *cfg, struct tsdb **ret);

/*
 * Stops: closes the connection and its handles; points still queued are not
 * sent (their number is logged).  t is freed once libuv has closed every
 * handle, so the loop must run afterwards (the master's shutdown does).
 * NULL-safe.
 */
void tsdb_stop(struct tsdb *t);

/*
 * Queues one point: number 'name' of builder 'builder' is 'value' at 'time'
 * (Unix seconds, e.g. clock_wall()).  Never blocks; sent as soon as the
 * connection can take it.  t NULL (no metrics_push) does nothing and
 * returns 0.  Returns 0, or -EINVAL (empty builder or name, value not
 * finite, time negative), -E2BIG (the line would pass KILN_TSDB_MAX_LINE).
 * A full queue is not an error: the oldest point is dropped and counted.
 */
int tsdb_record(struct tsdb *t, const char *builder, const char *name, double value, double time);

/*
 * Appends one point as its protocol's line, '\n' included, to out:
 *  influx:   PREFIX_number,builder=B,name=N value=V TIME_NS
 *            (measurement, tag keys and values escaped: '\' ',' '=' ' ';
 *            control characters become '_')
 *  graphite: PREFIX.B.N V TIME_S
 *            (B and N: every byte outside [A-Za-z0-9_-] becomes '_')
 * V is the shortest decimal that reads back as value ("12", "0.25").
 * Errors as tsdb_record; -E2BIG when out's cap is passed.
 */
int tsdb_format(enum config_tsdb_protocol protocol, const char *prefix, const char *builder,
		const char *name, double value, double time, struct buf *out);

/* For tests and /metrics: points sent (written to the socket), dropped from a
 * full queue, waiting (queue plus a write in flight); connected now? */
uint64_t tsdb_sent(const struct tsdb *t);
uint64_t tsdb_dropped(const struct tsdb *t);
size_t tsdb_queued(const struct tsdb *t);
int tsdb_connected(const struct tsdb *t);

#endif
