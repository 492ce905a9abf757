/*
 * The master process's shared state: one per process, living on the libuv
 * loop thread.  Modules (http/api, worker endpoint, build engine) borrow it.
 */
#ifndef KILN_MASTER_H
#define KILN_MASTER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct config;
struct db;
struct http_server;
struct engine;
struct sched;
struct pollers;
struct events;
struct tsdb;
struct numbers;
struct artifact_retention;
struct reporters;
struct metrics;
struct latent;

struct master {
	uv_loop_t *loop;    /* borrowed: the process's one loop */
	char *basedir;      /* owned, absolute */
	char *name;         /* owned: "<hostname>:<basedir>" as Buildbot names masters */
	struct config *cfg; /* owned */
	struct db *db;      /* owned */
	int64_t masterid;
	struct http_server *http; /* owned: HTTP API + worker endpoint */
	struct engine *engine;    /* owned: workers, requests, builds */
	struct sched *sched;      /* owned: schedulers (src/master/sched/) */
	struct pollers *pollers;  /* owned: polling change sources (src/master/changes/) */
	struct events *events;    /* owned: event bus for /ws (events.h) */
	struct tsdb *tsdb;        /* owned: metrics push (tsdb.h), NULL when not configured */
	struct numbers *numbers;  /* owned: ETA medians (numbers.h); NULL: no ETA */
	struct artifact_retention *retention; /* owned (artifact-retention.h), NULL: keep all */
	bool stopping;
	struct reporters *reporters; /* owned (reporters/reporters.h), NULL: none */
	bool draining;               /* slice "operator": clean stop, no new builds start */
	struct metrics *metrics;     /* slice "operator": owned (metrics.h), /metrics */
	struct latent *latent;       /* owned (latent.h): latent and local workers, NULL: none */
	struct masters *masters;     /* owned (masters.h): heartbeats on PostgreSQL, NULL: none */
	int workers_port;            /* the worker listener's bound port, once listening */
};

#endif
