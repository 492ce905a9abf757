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
	(256u << 10) /* undelivered /ws event bytes per browser, then resync */
#define KILN_MAX_HELD_EVENTS                                                                       \
	(64u << 20) /* event bytes held behind a row being read, then only numbered (events.h) */
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

/* Force and try control calls (slice: force) */
#define KILN_FORCE_MAX_BUILDER_NAMES 10000     /* builderNames entries of one force or try call */
#define KILN_FORCE_MAX_REASON 4096             /* force reason, try comment */
#define KILN_FORCE_MAX_OWNER 256               /* force username, try who */
#define KILN_FORCE_MAX_REF 256                 /* branch, revision of a force or try call */
#define KILN_FORCE_MAX_SOURCE 1024             /* repository, project, codebase, patch_subdir */
#define KILN_FORCE_MAX_TOKEN 1024              /* try token as sent */
#define KILN_FORCE_MAX_PROPS 64                /* properties one force call sets */
#define KILN_FORCE_MAX_PROP_NAME 128           /* a property name */
#define KILN_FORCE_MAX_PROP_VALUE (16u << 10)  /* one property value, as JSON text */
#define KILN_FORCE_MAX_PROPS_TOTAL (64u << 10) /* all properties of one call, as JSON text */
#define KILN_FORCE_MAX_PROP_DEPTH 8            /* nesting of lists/objects in a property value */

/* Change hooks and logins (slice "changes", issue 9) */
#define KILN_MAX_HOOK_COMMITS 2048 /* commits taken from one push (the newest kept) */
#define KILN_HOOK_SEEN_MAX 8192    /* deliveries remembered against replays (oldest forgotten) */
#define KILN_HOOK_SEEN_AGE (7.0 * 86400) /* seconds a delivery is remembered */
#define KILN_AUTH_FREE_FAILURES 5        /* failed logins per address before backoff */
#define KILN_AUTH_BACKOFF_FIRST_MS 1000  /* first refusal window after them (then doubles) */
#define KILN_AUTH_BACKOFF_MAX_MS 300000  /* longest refusal window */
#define KILN_AUTH_FORGET_MS 900000       /* quiet time after which an address is forgotten */
#define KILN_AUTH_LOG_EVERY_MS 60000     /* one summary log line per address per interval */
#define KILN_AUTH_MAX_ADDRS 4096         /* addresses tracked (least recently seen evicted) */

/* API collections (issue 9: paging and streamed answers) */
#define KILN_API_PAGE_DEFAULT 1000      /* rows in a collection answer without ?limit= */
#define KILN_API_PAGE_MAX 10000         /* rows in one answer: a larger ?limit= is lowered */
#define KILN_API_PIECE_ROWS 32          /* rows read per writeable callback (fewer if big) */
#define KILN_API_PIECE_TEXT (16u << 20) /* text of one piece (one row may fill it) */

/* /ws subscribers, Host/Origin checks (issue 9, slice ws) */
#define KILN_MAX_WS_EVENT_SUBSCRIBERS 256     /* browser /ws connections at once (then 503) */
#define KILN_MAX_WS_EVENT_CONTROL (64u << 10) /* /ws control replies queued past the events */
#define KILN_WS_EVENT_SNDBUF (64u << 10) /* kernel send buffer of a /ws socket (no autotuning) */
#define KILN_WS_CLOSE_TIMEOUT_S 5 /* a closing WebSocket whose peer does not read, then dropped */
#define KILN_TRIM_FREED_BYTES (4u << 20) /* /ws queue bytes freed before malloc_trim(0) runs */
#define KILN_TRIM_DELAY_MS 1000          /* ... at most once per this (a timer) */
#define KILN_MAX_HTTP_HOST_HDR 256       /* Host, Origin, Sec-Fetch-Site read for the checks */

/* HTTP front: listeners, slow and silent connections (slice: front) */
#define KILN_MAX_HTTP_HEADER (KILN_MAX_HTTP_URI + 8192) /* request line + headers, then 431 */
#define KILN_MAX_HTTP_HEADERS 48                        /* header lines per request, then 431 */
#define KILN_HTTP_HEADER_TIMEOUT_MS 10000  /* whole header block, from accept (absolute) */
#define KILN_HTTP_BODY_TIMEOUT_MS 30000    /* whole body, from the end of the headers */
#define KILN_HTTP_WRITE_STALL_MS 30000     /* an answer nobody reads, then closed */
#define KILN_HTTP_KEEPALIVE_SECS 30        /* idle keep-alive connection */
#define KILN_MAX_HTTP_PENDING_PER_ADDR 256 /* unfinished requests per address (oldest evicted) */
#define KILN_MAX_HTTP_PENDING 4096         /* unfinished requests per listener (oldest evicted) */
#define KILN_MAX_HTTP_PENDING_MEM (64u << 20) /* bytes they buffer, per listener (then 503) */
#define KILN_HTTP_HEADER_POOL 128             /* lws header slots per listener */
#define KILN_HTTP_IDLE_MAX                                                                         \
	64 /* idle keep-alive connections per listener (then close after answer) */
#define KILN_HTTP_KEEPALIVE_HEADER_SECS 5 /* a keep-alive connection's next header block */
#define KILN_HTTP_ACCEPT_BATCH 64         /* accepts per loop wake-up */
#define KILN_HTTP_LISTEN_BACKLOG 511      /* kernel queue of a listening socket */
#define KILN_HTTP_LWS_LOG_PER_MIN 20      /* lws error lines logged per minute */

/* Worker connection and log masking (issue 9, slice "worker") */
#define KILN_WORKER_HANDSHAKE_SECS 30      /* a worker's connect + upgrade answer, then retry */
#define KILN_WORKER_HANDSHAKE_MAX_SECS 600 /* KILN_WORKER_HANDSHAKE_TIMEOUT's upper bound */
#define KILN_LOGMASK_MAX_LINE (16u << 10)  /* a stored log line held for its end, then cut */

/* Slice "scale" (issue 9): an authenticated worker's protocol violations */
#define KILN_WORKER_VIOLATION_WINDOW_MS 60000 /* window of the cap and of the log summary */
#define KILN_MAX_WORKER_VIOLATIONS                                                                 \
	1000 /* answers to requests never made, updates for unknown commands... per window */

/* Lua sandbox: work inside C library calls, and what the master hands to
 * master.lua's functions and patterns at run time (slice: lua) */
#define KILN_LUA_STEPS_PER_INSN 4     /* pattern steps (or 1/4 table element) = 1 instruction */
#define KILN_LUA_MAX_TEXT (64u << 10) /* one string given to a filter (comments); cut */
#define KILN_LUA_MAX_FILES 10000      /* names in change.files given to a filter */
#define KILN_LUA_MAX_FILES_BYTES (1u << 20) /* their total bytes; the rest is left out */

/* Slice "mask" (issue 9): the relay that checks the masking of /ws client frames */
#define KILN_WS_GUARD_BUF (64u << 10) /* bytes buffered per direction of one /ws connection */

/* Slice "warn" (issue 10): warning counting (master/warnscan.c), metrics push (master/tsdb.c) */
#define KILN_WARNSCAN_MAX_PATTERNS 64       /* warning patterns of one step */
#define KILN_WARNSCAN_MAX_PATTERN_LEN 1024  /* bytes of one regex (pattern or suppression) */
#define KILN_WARNSCAN_MAX_SUPPRESSIONS 1024 /* suppressions of one step (list + file) */
#define KILN_WARNSCAN_MAX_SUPPRESSION_FILE (1u << 20) /* bytes of a suppression file parsed */
#define KILN_WARNSCAN_MAX_LINE (16u << 10)            /* output line held for its end, then cut */
#define KILN_WARNSCAN_MAX_LOG (1u << 20)              /* stored warnings log; the count goes on */
#define KILN_WARNSCAN_MAX_DIRS 64                     /* make's Entering directory stack depth */
#define KILN_WARNSCAN_MATCH_LIMIT 1000000             /* PCRE2 match() calls per line and pattern */
#define KILN_WARNSCAN_DEPTH_LIMIT 100000              /* PCRE2 backtracking depth per match */
#define KILN_WARNSCAN_HEAP_LIMIT_KIB 16384            /* PCRE2 backtracking heap per match (KiB) */
#define KILN_TSDB_MAX_QUEUE 10000          /* points waiting to be sent (oldest dropped) */
#define KILN_TSDB_MAX_LINE 1024            /* one formatted point, then refused */
#define KILN_TSDB_MAX_INFLIGHT (64u << 10) /* bytes handed to one uv_write at a time */
#define KILN_TSDB_BACKOFF_FIRST_MS 500     /* first reconnect delay (then doubles) */
#define KILN_TSDB_BACKOFF_MAX_MS 60000     /* longest reconnect delay */
#define KILN_TSDB_CONNECT_TIMEOUT_MS 10000 /* resolve + connect, then retry */
#define KILN_TSDB_WRITE_STALL_MS 30000     /* a write the store does not read, then reconnect */
#define KILN_TSDB_DROP_LOG_MS 60000        /* one "dropped N points" line per interval */
/* Slice "vcs" (issue 10): the bzr, darcs and cvs pollers */
#define KILN_POLLER_CVS_WINDOW 60.0 /* seconds between files of one CVS commit without commitid */
#define KILN_POLLER_CVS_COMMITID_SPAN 86400.0 /* longest CVS commit with a commitid, then split */
#define KILN_POLLER_CVS_OVERLAP 600.0   /* seconds re-read before the newest CVS revision seen */
#define KILN_POLLER_CVS_MAX_SEEN 100000 /* CVS file revisions remembered against re-reporting */
/* Slice "interp" (issue 10): Interpolate templates, secret masking, property bags */
#define KILN_INTERP_MAX_OUT (1u << 20) /* one rendered template (or a list's total) */
#define KILN_INTERP_MAX_DEPTH 16       /* templates nested in modifiers, then an error */
#define KILN_INTERP_MAX_VALUE_DEPTH 64 /* lists/objects nested in a rendered value */
#define KILN_LOGMASK_MAX_PATTERNS 1024 /* masked forms of all secrets (value, lines, encodings) */
#define KILN_LOGMASK_MAX_SECRET (64u << 10) /* a secret's value masked (longer: its start) */
#define KILN_PROPS_MAX 1024                 /* properties in one bag */
#define KILN_PROPS_MAX_NAME 256             /* bytes of a property name or source */
#define KILN_PROPS_MAX_VALUE (1u << 20)     /* a property's value as compact JSON */
/* Slice "multicb" (issue 10): several codebases per build */
#define KILN_MAX_CODEBASES 64 /* codebases in one scheduler's map (sourcestamps per buildset) */
#define KILN_MAX_CODEBASE_NAME 256    /* bytes of a codebase name (config or codebase_generator) */
#define KILN_MAX_CODEBASE_REPOS 10000 /* entries of a codebase_generator table */
/* Slice "artifacts" (issue 10): file transfers and the artifact store */
#define KILN_TRANSFER_MAX_CHUNK (1u << 20) /* bytes per download answer (asked-for more: fewer) */
#define KILN_TRANSFER_MAX_UPLOAD (16ull << 30) /* one upload when the step sets no maxsize */
#define KILN_UNTAR_MAX_ENTRIES 100000          /* entries in one uploaded directory's tar */
#define KILN_UNTAR_MAX_PATH 4096               /* one entry's path (or link target) */
/* Slice "tests" (issue 10): test reports (TAP, JUnit XML, go test -json) and their storage */
#define KILN_TESTREPORT_MAX_BYTES (1ull << 30)   /* one report's bytes (then an error) */
#define KILN_TESTREPORT_MAX_TESTS 1000000        /* test records in one report (then an error) */
#define KILN_TESTREPORT_MAX_NAME 1024            /* bytes of a test name (cut) */
#define KILN_TESTREPORT_MAX_MESSAGE 4096         /* bytes of a test's message or output (cut) */
#define KILN_TESTREPORT_MAX_FILE 512             /* bytes of a test's file path (cut) */
#define KILN_TESTREPORT_MAX_LINE (1u << 20)      /* one TAP or go test -json line (then an error) */
#define KILN_TESTREPORT_XML_MAX_DEPTH 64         /* JUnit element nesting (then an error) */
#define KILN_TESTREPORT_XML_MAX_ATTR (64u << 10) /* one JUnit attribute value (then an error) */
#define KILN_TESTREPORT_MAX_OPEN 10000   /* go tests or packages running at once (then an error) */
#define KILN_TESTREPORT_TAP_MAX_DEPTH 16 /* TAP 14 subtest nesting (then an error) */
#define KILN_TESTINGEST_BATCH 2000       /* test results per database write */
#define KILN_TEST_HISTORY_MAX 1000       /* newest results a per-test history reads */
/* Slice "numbers" (issue 10): numbers over time and ETA */
#define KILN_MAX_NUMBER_NAME 256         /* a number's name (step_duration:<step name> fits) */
#define KILN_ETA_SAMPLES 10              /* recent successful builds a builder's ETA medians use */
#define KILN_ETA_SCAN_BUILDS 100         /* finished builds looked at to find them (failures too) */
#define KILN_ETA_MAX_STEPS 1000          /* step durations read per build for the ETA and numbers */
#define KILN_ETA_MAX_BUILDERS (1u << 20) /* builder ids the ETA cache indexes (larger: no ETA) */
/* Slice "locks" (issue 10): master and worker locks */
#define KILN_MAX_LOCKS 10000        /* master_lock { } and worker_lock { } in one master.lua */
#define KILN_MAX_LOCK_COUNT 1000000 /* a lock's max_count and an access's count */
#define KILN_MAX_LOCKS_PER_SET 64   /* locks in one builder's or step's locks = { } */
#define KILN_MAX_LOCK_DESCRIBE 1024 /* bytes of a "waiting for lock ..." state string */
/* Slice "vcsstep" (issue 10): source steps but git (master/steps/source.c) */
#define KILN_MAX_SOURCE_OUTPUT 4096   /* stdout of a source step command it reads (revision, URL) */
#define KILN_MAX_SOURCE_EXTRA_ARGS 16 /* svn { extra_args }: fits a VCS argv (SOURCE_MAX_ARGV) */

/* ---- slice "xfer2": transfer steps and artifacts ---- */
#define KILN_ARTIFACTS_MAX_LIST 10000 /* rows one /builds/N/artifacts answer lists */
/* Slice "teststep" (issue 10): the test step */
#define KILN_TEST_STEP_MAX_REPORTS 64  /* report files one test { } step reads */
#define KILN_TEST_STEP_BLOCKSIZE 65536 /* bytes per upload chunk asked of the worker */

/* Slice "misc" (issue 10): set_property, set_property_from_command, log, master_shell, options */
#define KILN_DECODE_RC_MAX 256  /* entries in one step's decode_rc = { } */
#define KILN_STEP_RETRY_MAX 100 /* a step's retry = N (each attempt is a step row) */
#define KILN_SETPROP_MAX 1000   /* properties in one set_properties { } */
/* stdout (and stderr) kept by set_property_from_command */
#define KILN_PROPCMD_MAX_OUTPUT (1u << 20)
/* one master_shell's output into its log (then it is killed) */
#define KILN_MASTERSHELL_MAX_OUTPUT (64u << 20)

/* Slice "logfiles" (issue 10): logfiles = { } and lazylogfiles of command steps */
#define KILN_MAX_LOGFILES 32        /* logfiles of one step (a log and a worker fd each) */
#define KILN_MAX_LOGFILE_NAME 50    /* bytes of a logfile's name (Buildbot's slug column) */
#define KILN_MAX_LOGFILE_PATH 1024  /* bytes of a logfile's path under the step's workdir */
#define KILN_MAX_LOGFILE_REFUSED 10 /* lines about undeclared logs per step (then quiet) */
/* Slice "dispatch" (issue 10): next_worker, next_build, prioritize_builders */
/* idle workers one next_worker call is offered (the others are not) */
#define KILN_DISPATCH_MAX_WORKERS 1000
/* queued requests one next_build call sees (the head of the queue) */
#define KILN_DISPATCH_MAX_REQUESTS 100
/* builders one prioritize_builders call orders (the others follow them) */
#define KILN_DISPATCH_MAX_BUILDERS 1000
/* a builder's failing function is logged once per this many seconds */
#define KILN_DISPATCH_LOG_SECONDS 60
/* Slice "measure" (issue 10): tree_size, deb_build, deb_lintian, numbers = { } */
#define KILN_STEP_NUMBERS_MAX 64   /* entries in one step's numbers = { } */
#define KILN_NUMSCAN_MAX_LINE 4096 /* bytes of a stdout line a numbers regex scans (rest cut) */
#define KILN_NUMSCAN_MAX_VALUE 128 /* bytes of a captured value kept (longer: not a number) */
#define KILN_NUMBERS_FILE_MAX (64u << 10) /* bytes of a numbers file read from the worker */
#define KILN_TREESIZE_MAX_OUTPUT 4096     /* bytes of du's stdout kept by tree_size */
#define KILN_DEB_MAX_ARGS 64              /* deb_build's args, deb_lintian's suppress_tags */
/* Slice "artcli" (issue 10): artifact retention and the artifact CLI */
#define KILN_ARTIFACTS_MAX_KEEP_DAYS 36500       /* artifacts = { keep_days } (100 years) */
#define KILN_ARTIFACTS_MAX_KEEP_BUILDS 100000000 /* artifacts = { keep_builds } */
#define KILN_RETENTION_BATCH 1000 /* oldest artifact rows one retention pass reads and judges */
#define KILN_RETENTION_INTERVAL_S 3600              /* seconds between periodic retention passes */
#define KILN_MAX_HTTP_CLIENT_ERROR_BODY (64u << 10) /* an error answer to kiln artifact kept */
/* Slice "www" (issue 11): the web UI served from memory (src/master/www.c) */
#define KILN_WWW_MAX_HEADER 1024 /* Accept-Encoding, If-None-Match bytes read (more: ignored) */
#define KILN_WWW_MAX_INDEX (1u << 20) /* index.html with the configured title (then 500) */

/* Slice "perfsteps" (issue 10): the database cost of a step */
/* a finished log's last chunk shorter than this is stored uncompressed (zstd would
 * cost a thread-pool job and a second commit per step for a few bytes saved) */
#define KILN_LOG_RAW_TAIL_BYTES 4096

/* Slice "perfupload" (issue 10): upload blocks between the worker and the disk */
/* bytes, then blocks, of one upload answered before they are on disk */
#define KILN_UPLOAD_AHEAD_BYTES (2u << 20)
#define KILN_UPLOAD_AHEAD_BLOCKS 8
/* writes of one upload awaiting answers, and their bytes: one more fails it */
#define KILN_UPLOAD_MAX_UNANSWERED 8
#define KILN_UPLOAD_MAX_UNANSWERED_BYTES (8u << 20)
/* kiln-worker: upload writes it sends before awaiting the first answer */
#define KILN_WORKER_UPLOAD_WINDOW 4

/* Slice "uilog" (issue 11): the log viewer's search (api-logs.c, db_log_search) */
#define KILN_LOG_SEARCH_MAX_QUERY 1024 /* bytes of a search's q (more: 400) */
/* decompressed log text one search request scans (then "continue_from"): a few ms */
#define KILN_LOG_SEARCH_SCAN_BYTES (8u << 20)
/* Slice "steps20" (issue 10): group commit of the database's batches (src/db) */
/* a batch whose turn wrote stays open for the next turn, up to this many turns
 * and this long (loop time): bounds how late other processes see a write */
#define KILN_DB_GROUP_TURNS 16
#define KILN_DB_GROUP_MS 10
/* ---- slice "upload" (issue 10: the 1 GiB upload's speed) ---- */
/* kiln master: allocations from this size up are mmapped (glibc's default
 * 128 KiB, adjusted at run time, made an upload's 256 KiB message buffers
 * mmap, fault in and unmap once per block) */
#define KILN_MASTER_MMAP_THRESHOLD (1u << 20)
/* kiln master: free heap kept at the top before it is given back */
#define KILN_MASTER_TRIM_THRESHOLD (4u << 20)
/* Slice "uimisc" (issue 11): badges, Atom feeds, workers' last seen */
#define KILN_FEEDS_MAX_ENTRIES 20         /* builds in one Atom feed (Buildbot 0.8's default) */
#define KILN_FEEDS_MAX_BYTES (256u << 10) /* one feed document (then 500) */
#define KILN_FEEDS_MAX_URL 4096           /* the feed's own URL with ?builder= (then 500) */
#define KILN_FEEDS_MAX_AGE_S 30           /* Cache-Control max-age of a feed */
#define KILN_BADGE_MAX_TEXT 128           /* bytes of ?left_text= (more: 400) */
#define KILN_BADGE_BRANCH_SCAN 200        /* a builder's latest builds searched for ?branch= */
#define KILN_BADGE_MAX_AGE_S 30           /* Cache-Control max-age of a badge */
#define KILN_WORKER_SEEN_INTERVAL_S                                                                \
	60 /* a connected worker's last_seen is written at most this often */

/* Issue 14: the PostgreSQL connection (src/db/pg-conn.c) */
/* queries queued or in flight on one connection (a build of 5,000 steps
 * ending at once queues more than 4,096 writes and event reads) */
#define KILN_PG_MAX_QUEUE 65536
#define KILN_PG_MAX_QUEUE_BYTES (64u << 20)   /* their SQL text and parameters, copied */
#define KILN_PG_MAX_LISTEN 64                 /* channels one connection listens on */
#define KILN_PG_CONNECT_TIMEOUT_MS 10000      /* one connection attempt, then a failure */
#define KILN_PG_BACKOFF_FIRST_MS 100          /* first reconnect delay (then doubles) */
#define KILN_PG_BACKOFF_MAX_MS 10000          /* longest reconnect delay */
#define KILN_PG_MAX_ERROR 1024                /* bytes of a server error kept for a callback */
#define KILN_PG_MAX_NOTIFY_BYTES (256u << 10) /* event lines sent to other masters in one turn */

#endif
