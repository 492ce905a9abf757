/*
 * Every cap on a buffer that outside input fills, in one place.  Hitting a
 * cap is an ordinary error (HTTP 413, WebSocket close 1009, a protocol
 * error, a log marked truncated), never a crash.  Include as
 * "common/limits.h"; it does not shadow <limits.h>.
 */
#ifndef KILN_LIMITS_H
#define KILN_LIMITS_H

/* Worker protocol (msgpack over WebSocket) */
#define KILN_MAX_WS_FRAME (8u << 20)        /* one reassembled message from a worker */
#define KILN_MAX_MSGPACK_DEPTH 32           /* nesting of maps/arrays in one message */
#define KILN_MAX_MSGPACK_DECODED (4u << 20) /* unpacked tree of one message (24 B a value) */
#define KILN_MAX_PENDING_REQUESTS 4096      /* unanswered requests per connection */
#define KILN_MAX_WS_SENDQ (16u << 20)       /* bytes queued for one peer before backpressure */
#define KILN_WORKER_SENDQ_PAUSE (4u << 20)  /* worker pauses child output above this */
#define KILN_MAX_WORKER_INFO (1u << 20)     /* get_worker_info answer kept */
#define KILN_MAX_LINE (4096)                /* max_line_length sent to workers */
#define KILN_MAX_WORKER_PATH (4096)         /* a worker-side path (basedir + builddir + workdir) */

/* Build engine */
#define KILN_MAX_RETRY_ENTRIES 1024 /* requests whose lost-worker retries are counted */

/* HTTP */
#define KILN_MAX_HTTP_BODY (1u << 20) /* API request body */
#define KILN_MAX_HTTP_URI (8192)      /* path + query */
#define KILN_MAX_HTTP_QUERY_ARGS (64) /* query arguments per request */
#define KILN_MAX_HTTP_RESPONSE_CHUNK (64u << 10)
#define KILN_MAX_HTTP_REPLY_MEM (64u << 20) /* answers held at once, all connections (then 503) */
#define KILN_MAX_HTTP_CLIENT_BODY (256u << 20) /* what the kiln client reads */
#define KILN_MAX_CLIENT_CONF (64u << 10)       /* ~/.config/kiln/client.conf */
#define KILN_MAX_WS_EVENT_QUEUE                                                                    \
	(4u << 20)                    /* undelivered /ws event bytes per browser, then resync */
#define KILN_MAX_WS_SUBSCRIPTIONS 256 /* startConsuming paths per /ws connection */
#define KILN_MAX_WS_SUB_PATH 1024     /* length of one subscription path */

/* Logs */
#define KILN_LOG_CHUNK_BYTES (64u << 10) /* uncompressed size of a stored log chunk */
#define KILN_MAX_LOG_BYTES (1ull << 32)  /* per log; beyond this, truncated marker */
#define KILN_MAX_LOG_CONTENTS                                                                      \
	(16u << 20) /* text in one /logs/N/contents reply (fewer lines past it) */

/* Configuration */
#define KILN_MAX_CONFIG_BYTES (4u << 20)  /* master.lua size */
#define KILN_CONFIG_MEM_LIMIT (64u << 20) /* Lua heap, loading and every later call */
/* Lua instructions while loading; work inside library calls is charged too
 * (KILN_LUA_STEPS_PER_INSN, allocation at 16 bytes an instruction) */
#define KILN_CONFIG_INSN_LIMIT (50000000L)
#define KILN_MAX_SECRET_BYTES (4096)
/* CPU time while loading: read by the instruction hook every 1000
 * instructions and by the charged library calls (patterns, table.*) every
 * 4096 steps; other C calls only end by the memory cap (docs/CONFIG.md) */
#define KILN_CONFIG_CPU_SECONDS (10)

/* Change sources */
#define KILN_MAX_POLLER_OUTPUT (64u << 20)   /* stdout of one VCS tool run by a poller */
#define KILN_MAX_POLLER_STDERR (64u << 10)   /* stderr kept from it (for the error message) */
#define KILN_POLLER_STEP_TIMEOUT_MS (600000) /* one VCS tool run */
#define KILN_POLLER_MAX_BACKOFF (600.0)      /* seconds between retries of a failing poller */
#define KILN_POLLER_MAX_COMMITS 2000         /* commits turned into changes per poll */

/* Schedulers */
#define KILN_MAX_PATCH_BYTES                                                                       \
	(512u << 10)                 /* a try patch (base64 in a KILN_MAX_HTTP_BODY request)       \
				      */
#define KILN_MAX_SCHED_BRANCHES 1024 /* branch lines one any_branch scheduler waits on */

/* Names */
#define KILN_MAX_NAME 200 /* builder, worker, step names */

/* Lua sandbox: work inside C library calls, and what the master hands to
 * master.lua's functions and patterns at run time (slice: lua) */
#define KILN_LUA_STEPS_PER_INSN 4     /* pattern steps (or 1/4 table element) = 1 instruction */
#define KILN_LUA_MAX_TEXT (64u << 10) /* one string given to a filter (comments); cut */
#define KILN_LUA_MAX_FILES 10000      /* names in change.files given to a filter */
#define KILN_LUA_MAX_FILES_BYTES (1u << 20) /* their total bytes; the rest is left out */

#endif
