/*
 * `kiln force BUILDER`: starts a build through a force scheduler's
 * JSON-RPC "force" method and, with --wait, follows the build request to
 * its build, printing each step as it finishes and exiting with the
 * build's result.  Talks only to the public API (/api/v2).
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "client/ws.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Without /ws: short enough to feel live, long enough to cost the master nothing. */
#define FORCE_POLL_MS 150

enum { FORCE_OPT_SCHEDULER = CLI_OPT_FIRST_PRIVATE, FORCE_OPT_TIMEOUT, FORCE_OPT_OWNER };

static const char force_options[] =
	"  --scheduler S     force scheduler to use (default: the first that lists BUILDER)\n"
	"  -r, --reason R    reason recorded with the buildset\n"
	"  --owner WHO       who forces the build (default: $USER@HOST), sent as the\n"
	"                    force form's 'username' (Buildbot's default form wants an\n"
	"                    email address: 'a@b.c' or 'Name <a@b.c>')\n"
	"  -p, --property K=V  scheduler parameter or property (repeatable)\n"
	"  -w, --wait        follow the build; exit 0 for SUCCESS/WARNINGS, 1 otherwise\n"
	"  --timeout SECS    with --wait: give up after SECS seconds (exit 1)\n";

struct force_watch {
	struct http_client *c;
	struct ws_waiter *waiter; /* borrowed: /ws events, or polling */
	long long brid;
	uint64_t deadline_ms; /* 0: none */
	bool tty;
	bool live_line; /* a progress line is on screen, to be erased */
};

static void force_clear_live(struct force_watch *w)
{
	if (w->live_line) {
		fputs("\r\033[K", stdout);
		w->live_line = false;
	}
}

static bool force_timed_out(const struct force_watch *w)
{
	return w->deadline_ms && clock_mono_ms() >= w->deadline_ms;
}

/* The builder id for 'name', or a message and a negative code. */
static int force_builder_id(struct http_client *c, const char *name, long long *ret_id)
{
	_cleanup_free_ char *esc = http_escape(name);
	_cleanup_free_ char *path = xasprintf("/api/v2/builders?name=%s", esc);
	json_t *list, *b;
	size_t i;
	int r;

	r = http_get_list(c, path, "builders", &list);
	if (r < 0)
		return r;
	/* match the name ourselves: a master that ignores the filter returns all */
	json_array_foreach(list, i, b)
	{
		if (!strcmp(cli_json_str(b, "name", ""), name) &&
		    cli_json_int(b, "builderid", -1) >= 0) {
			*ret_id = cli_json_int(b, "builderid", -1);
			json_decref(list);
			return 0;
		}
	}
	json_decref(list);
	http_client_set_error(c, "no builder named '%s'", name);
	return KILN_ENOTFOUND;
}

/* The first force scheduler that lists 'builder', else the first, else "force". */
static int force_pick_scheduler(struct http_client *c, const char *builder, char **ret_name)
{
	json_t *list, *s, *names, *n;
	const char *first = NULL, *pick = NULL;
	size_t i, k;
	int r;

	r = http_get_list(c, "/api/v2/forceschedulers", "forceschedulers", &list);
	if (r < 0)
		return r;
	json_array_foreach(list, i, s)
	{
		const char *name = cli_json_str(s, "name", NULL);
		if (!name)
			continue;
		if (!first)
			first = name;
		names = json_object_get(s, "builder_names");
		json_array_foreach(names, k, n)
		{
			if (json_is_string(n) && !strcmp(json_string_value(n), builder)) {
				pick = name;
				break;
			}
		}
		if (pick)
			break;
	}
	*ret_name = xstrdup(pick ? pick : first ? first : "force");
	json_decref(list);
	return 0;
}

/*
 * Reads the force answer: Buildbot's [bsid, {"<builderid>": brid, ...}],
 * or an object {"buildsetid": N, "brids": {...}}.  *ret_brid is the
 * request for 'builderid' (else the first one).
 */
static int force_parse_result(json_t *result, long long builderid, long long *ret_bsid,
			      long long *ret_brid)
{
	json_t *bsid, *brids, *v;
	char key[32];

	if (json_is_array(result)) {
		bsid = json_array_get(result, 0);
		brids = json_array_get(result, 1);
	} else {
		bsid = json_object_get(result, "buildsetid");
		brids = json_object_get(result, "brids");
	}
	if (!json_is_integer(bsid) || !json_is_object(brids) || json_object_size(brids) == 0)
		return KILN_EPARSE;
	snprintf(key, sizeof(key), "%lld", builderid);
	v = json_object_get(brids, key);
	if (!v)
		v = json_object_iter_value(json_object_iter(brids));
	if (!json_is_integer(v))
		return KILN_EPARSE;
	*ret_bsid = json_integer_value(bsid);
	*ret_brid = json_integer_value(v);
	return 0;
}

/*
 * Prints the steps of 'build' that finished since the last call (in step
 * order, so the output reads like the build), and on a TTY a live line for
 * the running one.  *next_number is the first step number not yet printed.
 */
static int force_print_steps(struct force_watch *w, long long buildid, long long *next_number)
{
	json_t *steps, *s;
	size_t i;
	int r;
	_cleanup_free_ char *path = xasprintf("/api/v2/builds/%lld/steps", buildid);

	r = http_get_list(w->c, path, "steps", &steps);
	if (r < 0)
		return r;
	json_array_foreach(steps, i, s)
	{
		long long number = cli_json_int(s, "number", -1);
		const char *name = cli_json_str(s, "name", "?");
		double started = cli_json_num(s, "started_at", 0);
		char dur[32];

		if (number < *next_number)
			continue;
		if (!cli_json_bool(s, "complete", false)) {
			if (w->tty && started > 0) {
				cli_format_duration(clock_wall() - started, dur, sizeof(dur));
				force_clear_live(w);
				printf("  %s: running (%s)", name, dur);
				fflush(stdout);
				w->live_line = true;
			}
			break;
		}
		cli_format_duration(cli_json_num(s, "complete_at", 0) - started, dur, sizeof(dur));
		force_clear_live(w);
		printf("  %s: %s (%s)\n", name, cli_result_name(cli_json_int(s, "results", -1)),
		       dur);
		fflush(stdout);
		*next_number = number + 1;
	}
	json_decref(steps);
	return 0;
}

/* Follows one build to its end; *ret_result gets its result. */
static int force_follow_build(struct force_watch *w, json_t *build, long long *ret_result)
{
	long long buildid = cli_json_int(build, "buildid", -1);
	long long next_number = 0;
	json_t *b = json_incref(build), *fresh;
	char ref[24];
	int r;

	snprintf(ref, sizeof(ref), "%lld", buildid);

	force_clear_live(w);
	printf("build %lld started (number %lld)\n", buildid, cli_json_int(b, "number", -1));
	fflush(stdout);
	for (;;) {
		bool complete = cli_json_bool(b, "complete", false);

		/* steps after the build state: once complete, every step is final */
		r = force_print_steps(w, buildid, &next_number);
		if (r < 0)
			break;
		if (complete) {
			force_clear_live(w);
			*ret_result = cli_json_int(b, "results", -1);
			break;
		}
		if (force_timed_out(w)) {
			force_clear_live(w);
			http_client_set_error(w->c, "timed out waiting for build %lld", buildid);
			r = KILN_ETIMEOUT;
			break;
		}
		ws_waiter_wait(w->waiter, w->deadline_ms);
		r = cli_build_get(w->c, ref, &fresh);
		if (r < 0)
			break;
		json_decref(b);
		b = fresh;
	}
	json_decref(b);
	return r;
}

/* The newest build of request 'brid' with id > after, as a new reference, or NULL. */
static int force_next_build(struct force_watch *w, long long after, json_t **ret_build)
{
	json_t *builds, *b, *best = NULL;
	size_t i;
	int r;
	_cleanup_free_ char *path = xasprintf("/api/v2/builds?buildrequestid=%lld", w->brid);

	r = http_get_list(w->c, path, "builds", &builds);
	if (r < 0)
		return r;
	json_array_foreach(builds, i, b)
	{
		long long id = cli_json_int(b, "buildid", -1);
		if (cli_json_int(b, "buildrequestid", w->brid) != w->brid || id <= after)
			continue;
		if (!best || id < cli_json_int(best, "buildid", -1))
			best = b; /* the oldest unseen one: builds are followed in order */
	}
	*ret_build = best ? json_incref(best) : NULL;
	json_decref(builds);
	return 0;
}

/* Waits for request w->brid to produce builds and finish; returns the exit status. */
static int force_wait(struct force_watch *w)
{
	long long last_build = 0, result = -1;
	uint64_t pending_since = clock_mono_ms();
	json_t *build, *req;
	int r;
	_cleanup_free_ char *req_path = xasprintf("/api/v2/buildrequests/%lld", w->brid);

	for (;;) {
		/* request first: if it is complete now, the builds query below sees its build */
		r = http_get_list(w->c, req_path, "buildrequests", &req);
		if (r < 0)
			return cli_fail(w->c);
		bool req_complete = cli_json_bool(json_array_get(req, 0), "complete", false);
		long long req_result = cli_json_int(json_array_get(req, 0), "results", -1);
		json_decref(req);

		r = force_next_build(w, last_build, &build);
		if (r < 0)
			return cli_fail(w->c);
		if (build) {
			last_build = cli_json_int(build, "buildid", -1);
			r = force_follow_build(w, build, &result);
			json_decref(build);
			if (r < 0)
				return cli_fail(w->c);
			printf("build %lld: %s\n", last_build, cli_result_name(result));
			fflush(stdout);
			if (result != CLI_RETRY)
				return cli_result_exit(result);
			continue; /* a retried request gets another build */
		}
		if (req_complete) {
			/* finished without a (further) build: cancelled, or retries over */
			if (last_build && result >= 0)
				return cli_result_exit(result);
			printf("request %lld: %s\n", w->brid, cli_result_name(req_result));
			return cli_result_exit(req_result);
		}
		if (w->tty) {
			char dur[32];
			cli_format_duration((double)(clock_mono_ms() - pending_since) / 1000, dur,
					    sizeof(dur));
			force_clear_live(w);
			printf("  request %lld pending (%s)", w->brid, dur);
			fflush(stdout);
			w->live_line = true;
		}
		if (force_timed_out(w)) {
			force_clear_live(w);
			return cli_error("timed out waiting for request %lld", w->brid);
		}
		ws_waiter_wait(w->waiter, w->deadline_ms);
	}
}

struct force_args {
	const char *builder;   /* borrowed: argv */
	const char *scheduler; /* borrowed: argv; NULL to pick one */
	const char *reason;    /* borrowed: argv */
	const char *owner;     /* borrowed: argv; NULL for the default */
	double timeout;        /* seconds, 0: none */
	bool wait;
	json_t *params; /* owned: --property values */
};

static const struct option force_longopts[] = {
	{"scheduler", required_argument, NULL, FORCE_OPT_SCHEDULER},
	{"reason", required_argument, NULL, 'r'},
	{"owner", required_argument, NULL, FORCE_OPT_OWNER},
	{"property", required_argument, NULL, 'p'},
	{"wait", no_argument, NULL, 'w'},
	{"timeout", required_argument, NULL, FORCE_OPT_TIMEOUT},
	{0},
};

static void force_init(void *state)
{
	struct force_args *a = state;
	a->params = json_object();
}

static void force_release(void *state)
{
	struct force_args *a = state;
	json_decref(a->params);
}

static int force_option(void *state, int opt, const char *arg)
{
	struct force_args *a = state;
	char *k, *v;

	switch (opt) {
	case FORCE_OPT_SCHEDULER:
		a->scheduler = arg;
		break;
	case 'r':
		a->reason = arg;
		break;
	case FORCE_OPT_OWNER:
		if (!*arg)
			return cli_usage_error(&cmd_force, "empty owner");
		a->owner = arg;
		break;
	case 'p':
		if (cli_parse_property(arg, &k, &v) < 0)
			return cli_usage_error(&cmd_force, "bad property '%s': expected KEY=VALUE",
					       arg);
		json_object_set_new(a->params, k, json_string(v));
		free(k);
		free(v);
		break;
	case 'w':
		a->wait = true;
		break;
	default: /* FORCE_OPT_TIMEOUT */
		if (cli_parse_seconds(arg, &a->timeout) < 0)
			return cli_usage_error(&cmd_force, "bad timeout '%s': expected seconds",
					       arg);
		break;
	}
	return CLI_EXIT_OK;
}

static int force_args(void *state, int argc, char **argv)
{
	struct force_args *a = state;
	if (argc == 0)
		return cli_usage_error(&cmd_force, "missing BUILDER");
	if (argc > 1)
		return cli_usage_error(&cmd_force, "unexpected argument '%s'", argv[1]);
	a->builder = argv[0];
	return CLI_EXIT_OK;
}

static int force_exec(void *state, struct http_client *c)
{
	struct force_args *a = state;
	struct ws_waiter waiter = {0};
	uint64_t start_ms = clock_mono_ms();
	long long builderid, bsid, brid;
	char *scheduler = NULL, *esc = NULL, *path = NULL, *text;
	json_t *result = NULL;
	char idstr[24];
	int r;

	r = force_builder_id(c, a->builder, &builderid);
	if (r >= 0 && !a->scheduler)
		r = force_pick_scheduler(c, a->builder, &scheduler);
	if (r < 0) {
		r = cli_fail(c);
		goto out;
	}
	if (!scheduler)
		scheduler = xstrdup(a->scheduler);

	/* the builder and reason win over a --property of the same name */
	snprintf(idstr, sizeof(idstr), "%lld", builderid);
	json_object_set_new(a->params, "builderid", json_string(idstr));
	if (a->reason)
		json_object_set_new(a->params, "reason", json_string(a->reason));
	/* the owner: --owner, else a -p username=..., else USER@HOST */
	if (a->owner) {
		json_object_set_new(a->params, "username", json_string(a->owner));
	} else if (!json_object_get(a->params, "username")) {
		char host[256] = "";
		if (gethostname(host, sizeof(host) - 1) < 0)
			host[0] = '\0';
		_cleanup_free_ char *owner = cli_owner_default(getenv("USER"), host);
		json_object_set_new(a->params, "username", json_string(owner));
	}
	if (a->wait) {
		/* subscribed before the request exists: none of its events is missed
		 * (Buildbot also publishes steps; Kiln acknowledges and sends none) */
		static const char *const paths[] = {"buildrequests/*/*", "builds/*/*", "steps/*/*",
						    NULL};
		ws_waiter_open(&waiter, c->base, c->token, paths, FORCE_POLL_MS);
	}
	esc = http_escape(scheduler);
	path = xasprintf("/api/v2/forceschedulers/%s", esc);
	r = http_rpc(c, path, "force", a->params, &result);
	if (r < 0) {
		r = cli_error("cannot force '%s' with scheduler '%s': %s", a->builder, scheduler,
			      http_client_error(c));
		goto out;
	}
	if (force_parse_result(result, builderid, &bsid, &brid) < 0) {
		text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
		r = cli_error("scheduler '%s' did not create a build request for '%s' (answer: %s)",
			      scheduler, a->builder, text ? text : "?");
		free(text);
		goto out;
	}
	printf("buildset %lld, request %lld\n", bsid, brid);
	fflush(stdout);
	r = CLI_EXIT_OK;
	if (a->wait) {
		struct force_watch w = {
			.c = c,
			.waiter = &waiter,
			.brid = brid,
			.deadline_ms =
				a->timeout > 0 ? start_ms + (uint64_t)(a->timeout * 1000) : 0,
			.tty = cli_is_color_tty(stdout),
		};
		r = force_wait(&w);
	}
out:
	ws_waiter_release(&waiter);
	json_decref(result);
	free(path);
	free(esc);
	free(scheduler);
	return r;
}

const struct cmd cmd_force = {
	.name = "force",
	.usage = "BUILDER [--reason R] [--owner WHO] [--property K=V]... [--scheduler S] [--wait "
		 "[--timeout SECS]]",
	.summary = "start a build of BUILDER through a force scheduler",
	.flags = CMD_MASTER,
	.optstring = "r:p:w",
	.options = force_longopts,
	.options_help = force_options,
	.state_size = sizeof(struct force_args),
	.init = force_init,
	.option = force_option,
	.args = force_args,
	.exec = force_exec,
	.release = force_release,
};
