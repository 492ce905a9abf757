/*
 * Results pushed from outside (slice "push", docs/PUSH.md; pony-build's
 * model): POST /api/v2/push takes a result bag from any machine holding an
 * API token with the scope push, answers 202 at once with a submission id,
 * and stores it on a later loop turn (the next database batch) as a build
 * of the external builder "push:PACKAGE", so the API, /ws, the UI and the
 * reporters see it as any other build.  Also: partial results (an update
 * token, POST /push/ID/steps and /push/ID/finish), the submission's status
 * (GET /push/ID), "should I build?" (GET /push/check), the latest result
 * per package and host (GET /push/latest), per-token caps, and the expected
 * reporters of master.lua (an event and a log line when one goes quiet,
 * again when it is back).
 */
#ifndef KILN_MASTER_PUSH_H
#define KILN_MASTER_PUSH_H

#include <stdbool.h>

struct master;
struct api_ctx;

/* Starts the module on m (cmd-master.c): closes submissions a previous run
 * left open and starts the expected reporters' timer.  Logs its errors;
 * without it the API handlers start the module on first use (no expected
 * reporters then). */
void push_start(struct master *m);
/* Stops it: queued submissions not yet stored are dropped (logged).  Its
 * handles are closed; run the loop afterwards to free them. */
void push_stop(void);

/* POST under /api/v2/push (api.c calls this before its JSON-RPC
 * handling): true when the path is one of push's (answered), false to let
 * the router go on. */
bool push_api_post(struct api_ctx *ctx);
/* GET /api/v2/push/ID, /push/check, /push/latest (api.c's routes). */
void api_push_get(struct api_ctx *ctx);
void api_push_check_get(struct api_ctx *ctx);
void api_push_latest_get(struct api_ctx *ctx);

/* Tests and the bench: submissions accepted and not stored yet. */
unsigned push_queued(void);

#endif
