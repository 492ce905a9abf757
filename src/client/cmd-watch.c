/*
 * `kiln watch`: a live terminal view of the master (ncursesw): builders
 * with their last result, running build, current step and progress from
 * eta_at, recent results as coloured marks, and a pane with the selected
 * builder's builds or its running build's steps.  Keys select, filter,
 * force and stop.  `--once` prints a plain-text snapshot instead.
 *
 * One loop: poll() on the terminal and the /ws socket with a timeout that
 * is the earliest of the next clock tick, a scheduled re-read and a
 * reconnection attempt.  /ws events only wake the view up (ws.h): the
 * state is re-read over REST, at most every WATCH_MIN_REFRESH_MS (more
 * apart when a re-read is slow: watch_plan_refresh()), so a
 * burst of events costs one re-read and a lost one costs nothing.
 * Without /ws (an https master, a broken socket) the view re-reads every
 * WATCH_POLL_MS and tries /ws again with a doubling backoff, showing
 * "disconnected" meanwhile.
 */
#include "client/cli.h"
#include "client/cmd-watch.h"
#include "client/cmd.h"
#include "client/http.h"
#include "client/ws.h"
#include "common/clock.h"
#include "common/xalloc.h"

#include <curses.h>
#include <errno.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WATCH_MIN_REFRESH_MS 400    /* events closer than this share one re-read */
#define WATCH_REFRESH_DUTY 4        /* ... and at least 4x the last re-read's time apart */
#define WATCH_IDLE_REFRESH_MS 10000 /* re-read this often even without events */
#define WATCH_POLL_MS 2000          /* re-read this often without /ws */
#define WATCH_BACKOFF_MIN_MS 500
#define WATCH_BACKOFF_MAX_MS 15000
#define WATCH_WS_OPEN_MS 3000
#define WATCH_RECENT_BUILDS 500 /* newest builds read for the marks */
#define WATCH_MAX_STEP_READS 50 /* running builds whose current step is read */
#define WATCH_PANE_BUILDS 50    /* builds in the selected builder's pane */
#define WATCH_MSG_MS 6000       /* how long a message stays on the status line */

enum { WATCH_OPT_ONCE = CLI_OPT_FIRST_PRIVATE, WATCH_OPT_NO_COLOR, WATCH_OPT_FILTER };

static const char watch_options[] =
	"  --once            print one plain-text snapshot and exit (no curses)\n"
	"  --no-color        no colours (also when $NO_COLOR is set)\n"
	"  --filter TEXT     show only builders whose name contains TEXT\n"
	"  (keys)            up/down/j/k select, Enter details, Esc/Backspace back,\n"
	"                    f force, s stop the running build, / filter, r refresh,\n"
	"                    q quit\n";

struct watch_args {
	bool once;
	bool no_color;
	char filter[WATCH_FILTER_MAX + 1];
};

static const struct option watch_longopts[] = {
	{"once", no_argument, NULL, WATCH_OPT_ONCE},
	{"no-color", no_argument, NULL, WATCH_OPT_NO_COLOR},
	{"no-colour", no_argument, NULL, WATCH_OPT_NO_COLOR},
	{"filter", required_argument, NULL, WATCH_OPT_FILTER},
	{0},
};

enum watch_mode { MODE_NORMAL, MODE_FILTER, MODE_CONFIRM_FORCE, MODE_CONFIRM_STOP };

/* colour pairs: one per look, then the header */
enum { PAIR_HEADER = WATCH_LOOK_COUNT + 1 };

struct watch_ui {
	struct http_client *c;
	struct watch_state st;
	bool color;
	bool detail; /* Enter: the selected builder's whole screen */
	enum watch_mode mode;
	char filter[WATCH_FILTER_MAX + 1];
	long long sel_id; /* selected builder, kept across re-reads */
	size_t top;       /* first visible row of the list */
	long long confirm_buildid, confirm_number;
	json_t *pane_builds; /* owned: the selected builder's recent builds */
	json_t *pane_steps;  /* owned: its running build's steps, or NULL */
	long long pane_builder;
	char msg[256];
	uint64_t msg_until;
	/* the master */
	struct ws_client *ws; /* NULL: disconnected (or no /ws) */
	bool ws_unsupported;  /* https: polling only */
	bool api_ok;
	char api_error[160];
	unsigned backoff_ms;
	uint64_t reconnect_at;    /* 0: none planned */
	uint64_t refresh_at;      /* 0: none planned */
	uint64_t last_refresh;    /* when the last re-read ended */
	uint64_t last_refresh_ms; /* how long it took */
	bool quit;
};

static volatile sig_atomic_t watch_stop_signal;

static void watch_on_signal(int sig)
{
	watch_stop_signal = sig;
}

/* ---- reading the master --------------------------------------------------- */

/* The last step of 'steps' that is not complete (else the last one). */
static const json_t *watch_current_step(const json_t *steps)
{
	const json_t *cur = NULL, *o;
	size_t i;

	json_array_foreach(steps, i, o)
	{
		if (!cli_json_bool(o, "complete", false))
			cur = o;
	}
	if (!cur && json_array_size(steps))
		cur = json_array_get(steps, json_array_size(steps) - 1);
	return cur;
}

/* Fills each running build's current step (at most WATCH_MAX_STEP_READS reads). */
static void watch_read_steps(struct http_client *c, struct watch_state *st)
{
	unsigned reads = 0;

	for (size_t i = 0; i < st->n && reads < WATCH_MAX_STEP_READS; i++) {
		struct watch_builder *w = &st->b[i];
		json_t *steps;
		if (w->running.buildid <= 0)
			continue;
		reads++;
		if (http_getf_json(c, &steps, "/api/v2/builds/%lld/steps?complete=false",
				   w->running.buildid) < 0)
			continue;
		const json_t *s = watch_current_step(json_object_get(steps, "steps"));
		if (s)
			snprintf(w->step, sizeof(w->step), "%s", cli_json_str(s, "name", "?"));
		json_decref(steps);
	}
}

/*
 * Reads the whole model: builders, running builds, the newest finished
 * ones and each builder's last finished one (Kiln's /lastbuilds; a master
 * without it just shows fewer marks).  Prints nothing.
 */
static int watch_read_state(struct http_client *c, struct watch_state *ret)
{
	char recent[64];
	snprintf(recent, sizeof(recent), "/api/v2/builds?order=-buildid&limit=%d",
		 WATCH_RECENT_BUILDS);
	const char *const paths[] = {"/api/v2/builds?complete=false&limit=1000", recent};
	struct watch_state st = {0};
	json_t *list;
	int r;

	/* every builder kept (WATCH_MAX_BUILDERS), not the API's default page */
	r = http_get_list(c, "/api/v2/builders?limit=10000", "builders", &list);
	if (r < 0)
		return r;
	watch_state_set_builders(&st, list);
	json_decref(list);
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		r = http_get_list(c, paths[i], "builds", &list);
		if (r < 0) {
			watch_state_release(&st);
			return r;
		}
		watch_state_add_builds(&st, list);
		json_decref(list);
	}
	if (http_get_list(c, "/api/v2/lastbuilds?complete=true", "builds", &list) >= 0) {
		watch_state_add_builds(&st, list);
		json_decref(list);
	}
	watch_read_steps(c, &st);
	watch_state_release(ret);
	*ret = st;
	return 0;
}

/* ---- the view's state ----------------------------------------------------- */

static void watch_message(struct watch_ui *ui, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void watch_message(struct watch_ui *ui, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ui->msg, sizeof(ui->msg), fmt, ap);
	va_end(ap);
	ui->msg_until = clock_mono_ms() + WATCH_MSG_MS;
}

/* The indexes of the builders the filter shows; returns how many. */
static size_t watch_visible(const struct watch_ui *ui, size_t *idx)
{
	size_t n = 0;
	for (size_t i = 0; i < ui->st.n; i++)
		if (watch_filter_match(ui->st.b[i].name, ui->filter))
			idx[n++] = i;
	return n;
}

/* The selected builder (the first visible one when the old one is gone), or NULL. */
static struct watch_builder *watch_selected(struct watch_ui *ui, size_t *ret_row)
{
	size_t *idx = xcalloc(ui->st.n + 1, sizeof(*idx));
	size_t n = watch_visible(ui, idx), row = 0;
	struct watch_builder *w = NULL;

	for (size_t k = 0; k < n; k++)
		if (ui->st.b[idx[k]].id == ui->sel_id) {
			row = k;
			w = &ui->st.b[idx[k]];
		}
	if (!w && n) {
		w = &ui->st.b[idx[0]];
		ui->sel_id = w->id;
	}
	free(idx);
	if (ret_row)
		*ret_row = row;
	return w;
}

static void watch_move(struct watch_ui *ui, int delta)
{
	size_t *idx = xcalloc(ui->st.n + 1, sizeof(*idx));
	size_t n = watch_visible(ui, idx), row = 0;

	watch_selected(ui, &row);
	if (n) {
		long long to = (long long)row + delta;
		if (to < 0)
			to = 0;
		if (to >= (long long)n)
			to = (long long)n - 1;
		ui->sel_id = ui->st.b[idx[to]].id;
	}
	free(idx);
}

/* Reads the selected builder's pane: its recent builds and its running build's steps. */
static void watch_read_pane(struct watch_ui *ui)
{
	struct watch_builder *w = watch_selected(ui, NULL);
	json_t *list;

	json_decref(ui->pane_builds);
	json_decref(ui->pane_steps);
	ui->pane_builds = ui->pane_steps = NULL;
	ui->pane_builder = w ? w->id : -1;
	if (!w)
		return;
	_cleanup_free_ char *path = xasprintf(
		"/api/v2/builds?builderid=%lld&order=-number&limit=%d", w->id, WATCH_PANE_BUILDS);
	if (http_get_list(ui->c, path, "builds", &list) >= 0)
		ui->pane_builds = list;
	if (w->running.buildid > 0) {
		_cleanup_free_ char *spath =
			xasprintf("/api/v2/builds/%lld/steps", w->running.buildid);
		if (http_get_list(ui->c, spath, "steps", &list) >= 0)
			ui->pane_steps = list;
	}
}

/* Re-reads everything now. */
static void watch_refresh(struct watch_ui *ui)
{
	uint64_t start = clock_mono_ms();
	int r = watch_read_state(ui->c, &ui->st);

	ui->refresh_at = 0;
	ui->api_ok = r >= 0;
	if (r < 0)
		snprintf(ui->api_error, sizeof(ui->api_error), "%s", http_client_error(ui->c));
	else
		ui->api_error[0] = '\0';
	if (r >= 0)
		watch_read_pane(ui);
	ui->last_refresh = clock_mono_ms();
	ui->last_refresh_ms = ui->last_refresh - start;
}

/*
 * Plans a re-read soon: WATCH_MIN_REFRESH_MS after the last one, or four
 * times as long as it took, so a busy master (many running builds, slow
 * answers) spends at most a fifth of the time answering this view.
 */
static void watch_plan_refresh(struct watch_ui *ui)
{
	uint64_t gap = ui->last_refresh_ms * WATCH_REFRESH_DUTY;
	if (gap < WATCH_MIN_REFRESH_MS)
		gap = WATCH_MIN_REFRESH_MS;
	uint64_t at = ui->last_refresh + gap, now = clock_mono_ms();
	if (at < now)
		at = now;
	if (!ui->refresh_at || at < ui->refresh_at)
		ui->refresh_at = at;
}

static void watch_ws_lost(struct watch_ui *ui)
{
	ws_close(ui->ws);
	ui->ws = NULL;
	ui->reconnect_at = clock_mono_ms() + ui->backoff_ms;
	ui->backoff_ms = ui->backoff_ms * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS
								   : ui->backoff_ms * 2;
}

/* Opens /ws and subscribes; on success re-reads at once (events may have been missed). */
static void watch_connect(struct watch_ui *ui)
{
	static const char *const paths[] = {"builds/*/*", "builds/*/steps/*/*", NULL};
	int r;

	ui->reconnect_at = 0;
	if (ui->ws_unsupported)
		return;
	r = ws_open(ui->c->base, ui->c->token, WATCH_WS_OPEN_MS, &ui->ws);
	for (size_t i = 0; r == 0 && paths[i]; i++)
		r = ws_subscribe(ui->ws, paths[i]);
	if (r == -ENOTSUP) {
		ui->ws_unsupported = true; /* https: re-read every WATCH_POLL_MS */
		return;
	}
	if (r < 0) {
		if (ui->ws)
			ws_close(ui->ws);
		ui->ws = NULL;
		watch_ws_lost(ui);
		watch_refresh(ui); /* keeps api_ok and its error up to date */
		return;
	}
	ui->backoff_ms = WATCH_BACKOFF_MIN_MS;
	watch_refresh(ui);
}

/* ---- forcing and stopping --------------------------------------------------- */

/* The first force scheduler listing 'builder', else the first, else "force". */
static char *watch_force_scheduler(struct http_client *c, const char *builder)
{
	json_t *list, *s, *n;
	const char *first = NULL, *pick = NULL;
	size_t i, k;

	if (http_get_list(c, "/api/v2/forceschedulers", "forceschedulers", &list) < 0)
		return xstrdup("force");
	json_array_foreach(list, i, s)
	{
		const char *name = cli_json_str(s, "name", NULL);
		if (!name)
			continue;
		if (!first)
			first = name;
		json_array_foreach(json_object_get(s, "builder_names"), k, n)
		{
			if (!pick && json_is_string(n) && !strcmp(json_string_value(n), builder))
				pick = name;
		}
		if (pick)
			break;
	}
	char *r = xstrdup(pick ? pick : first ? first : "force");
	json_decref(list);
	return r;
}

/* Forces a build of w, as `kiln force NAME` does. */
static void watch_force(struct watch_ui *ui, const struct watch_builder *w)
{
	_cleanup_free_ char *sched = watch_force_scheduler(ui->c, w->name);
	_cleanup_free_ char *esc = http_escape(sched);
	_cleanup_free_ char *path = xasprintf("/api/v2/forceschedulers/%s", esc);
	char host[256] = "", idstr[24];
	json_t *params = json_object(), *result = NULL;

	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	_cleanup_free_ char *owner = cli_owner_default(getenv("USER"), host);
	snprintf(idstr, sizeof(idstr), "%lld", w->id);
	json_object_set_new(params, "builderid", json_string(idstr));
	json_object_set_new(params, "reason", json_string("forced from kiln watch"));
	json_object_set_new(params, "username", json_string(owner));
	if (http_rpc(ui->c, path, "force", params, &result) < 0)
		watch_message(ui, "cannot force '%s': %s", w->name, http_client_error(ui->c));
	else
		watch_message(ui, "forced a build of '%s' (scheduler '%s')", w->name, sched);
	json_decref(result);
	json_decref(params);
	watch_plan_refresh(ui);
}

/* Stops build 'buildid', as `kiln stop-build` does. */
static void watch_stop(struct watch_ui *ui, long long buildid, long long number)
{
	_cleanup_free_ char *path = xasprintf("/api/v2/builds/%lld", buildid);
	json_t *params, *build;

	/* the API answers a stop of a finished build with success: look first */
	if (http_get_list(ui->c, path, "builds", &build) >= 0) {
		const json_t *b = json_array_get(build, 0);
		bool done = cli_json_bool(b, "complete", false);
		long long results = cli_json_int(b, "results", -1);
		json_decref(build);
		if (done) {
			watch_message(ui, "build #%lld already ended: %s", number,
				      cli_result_name(results));
			watch_plan_refresh(ui);
			return;
		}
	}
	params = json_pack("{s:s}", "reason", "stopped from kiln watch");
	if (http_rpc(ui->c, path, "stop", params, NULL) < 0)
		watch_message(ui, "cannot stop build %lld: %s", buildid, http_client_error(ui->c));
	else
		watch_message(ui, "stopping build #%lld (id %lld)", number, buildid);
	json_decref(params);
	watch_plan_refresh(ui);
}

/* ---- drawing ------------------------------------------------------------------ */

static attr_t watch_look_attr(const struct watch_ui *ui, enum watch_look look)
{
	if (!ui->color)
		return look == WATCH_RUNNING ? A_BOLD : A_NORMAL;
	attr_t a = COLOR_PAIR(look + 1);
	if (look == WATCH_RUNNING || look == WATCH_FAILURE)
		a |= A_BOLD;
	return a;
}

static void watch_colors(struct watch_ui *ui)
{
	if (!ui->color || !has_colors() || start_color() == ERR) {
		ui->color = false;
		return;
	}
	use_default_colors();
	bool many = COLORS >= 256;
	init_pair(WATCH_IDLE + 1, -1, -1);
	init_pair(WATCH_SUCCESS + 1, COLOR_GREEN, -1);
	init_pair(WATCH_WARNINGS + 1, many ? 208 : COLOR_YELLOW, -1); /* orange */
	init_pair(WATCH_FAILURE + 1, COLOR_RED, -1);
	init_pair(WATCH_EXCEPTION + 1, many ? 129 : COLOR_MAGENTA, -1); /* purple */
	init_pair(WATCH_CANCELLED + 1, many ? 244 : COLOR_WHITE, -1);
	init_pair(WATCH_RUNNING + 1, many ? 226 : COLOR_YELLOW, -1);
	init_pair(PAIR_HEADER, COLOR_BLACK, COLOR_CYAN);
}

/* Writes s at (y, x), clipped to the screen's width. */
static void watch_put(int y, int x, const char *s, attr_t a)
{
	if (y < 0 || y >= LINES || x >= COLS)
		return;
	attron(a);
	mvaddnstr(y, x, s, COLS - x);
	attroff(a);
}

static void watch_draw_header(struct watch_ui *ui)
{
	char clock[32], line[512], counts[64];
	const char *conn;
	char connbuf[64];
	uint64_t now = clock_mono_ms();

	cli_format_time(clock_wall(), clock, sizeof(clock));
	if (!ui->api_ok) {
		conn = "disconnected";
	} else if (ui->ws) {
		conn = "connected";
	} else if (ui->ws_unsupported) {
		conn = "connected (polling)";
	} else {
		unsigned left = ui->reconnect_at > now
					? (unsigned)((ui->reconnect_at - now + 999) / 1000)
					: 0;
		snprintf(connbuf, sizeof(connbuf), "disconnected (retry in %us)", left);
		conn = connbuf;
	}
	attr_t h = ui->color ? COLOR_PAIR(PAIR_HEADER) : A_REVERSE;
	attron(h);
	mvhline(0, 0, ' ', COLS);
	attroff(h);
	size_t running = 0;
	for (size_t i = 0; i < ui->st.n; i++)
		running += ui->st.b[i].running.buildid > 0;
	snprintf(counts, sizeof(counts), "  %zu builders, %zu running", ui->st.n, running);
	snprintf(line, sizeof(line), " kiln watch  %s  [%s]", ui->c->base, conn);
	/* the counts only where they leave room for the clock */
	if (strlen(line) + strlen(counts) + strlen(clock) + 2 <= (size_t)COLS)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s", counts);
	watch_put(0, 0, line, h | A_BOLD);
	int x = COLS - (int)strlen(clock) - 1;
	if (x > (int)strlen(line) + 1)
		watch_put(0, x, clock, h);
}

/* Column layout of the builder rows for this width. */
struct watch_cols {
	int name, last, build, step, progress, recent;
};

static struct watch_cols watch_layout(const struct watch_ui *ui)
{
	struct watch_cols c = {.name = 1};
	int nw = 7;
	for (size_t i = 0; i < ui->st.n; i++) {
		int l = (int)strlen(ui->st.b[i].name);
		if (l > nw)
			nw = l;
	}
	if (nw > 28)
		nw = 28;
	c.last = c.name + nw + 2;
	c.build = c.last + 11;
	c.step = c.build + 8;
	c.progress = c.step + 18;
	c.recent = c.progress + 31;
	return c;
}

static void watch_draw_row(struct watch_ui *ui, const struct watch_cols *c, int y,
			   const struct watch_builder *w, bool selected, double now)
{
	const struct watch_build *b = w->running.buildid > 0 ? &w->running : &w->last;
	enum watch_look look = watch_build_look(b);
	char buf[160];
	attr_t sel = selected ? A_REVERSE : A_NORMAL;

	if (selected) {
		attron(A_REVERSE);
		mvhline(y, 0, ' ', COLS);
		attroff(A_REVERSE);
	}
	snprintf(buf, sizeof(buf), "%-*.*s", c->last - c->name - 1, c->last - c->name - 1, w->name);
	watch_put(y, c->name, buf, sel | A_BOLD);
	watch_put(y, c->last, watch_build_word(b), sel | watch_look_attr(ui, look));
	if (b->buildid > 0) {
		snprintf(buf, sizeof(buf), "#%lld", b->number);
		watch_put(y, c->build, buf, sel);
	}
	if (w->running.buildid > 0) {
		snprintf(buf, sizeof(buf), "%.16s", w->step[0] ? w->step : "-");
		watch_put(y, c->step, buf, sel);
		watch_format_progress(now, w->running.started_at, w->running.eta_at, 10, buf,
				      sizeof(buf));
		watch_put(y, c->progress, buf, sel | watch_look_attr(ui, WATCH_RUNNING));
	}
	for (size_t k = 0; k < w->nrecent; k++) {
		char m[2] = {watch_result_mark(w->recent[k]), 0};
		watch_put(y, c->recent + (int)k, m,
			  sel | A_BOLD | watch_look_attr(ui, watch_result_look(w->recent[k])));
	}
}

/* The selected builder's pane from row y0 to y1 (exclusive). */
static void watch_draw_pane(struct watch_ui *ui, struct watch_builder *w, int y0, int y1,
			    double now)
{
	char buf[512], dur[32], when[32];
	int y = y0;
	size_t i;
	json_t *o;

	if (!w || y0 >= y1)
		return;
	bool steps = ui->pane_steps && w->running.buildid > 0 && ui->pane_builder == w->id;
	if (steps) {
		snprintf(buf, sizeof(buf), "-- %s #%lld: steps ", w->name, w->running.number);
		watch_put(y++, 0, buf, A_BOLD);
		json_array_foreach(ui->pane_steps, i, o)
		{
			if (y >= y1)
				break;
			struct watch_build s;
			watch_build_from_json(&s, o);
			s.buildid = 1; /* a step: look by its results */
			double start = cli_json_num(o, "started_at", 0);
			double end = s.complete ? cli_json_num(o, "complete_at", 0) : now;
			cli_format_duration(start > 0 && end >= start ? end - start : 0, dur,
					    sizeof(dur));
			snprintf(buf, sizeof(buf), "  %-24.24s", cli_json_str(o, "name", "?"));
			watch_put(y, 0, buf, A_NORMAL);
			watch_put(y, 27, watch_build_word(&s),
				  watch_look_attr(ui, watch_build_look(&s)));
			if (s.complete)
				snprintf(buf, sizeof(buf), "%-8s %s", dur, s.state_string);
			else
				watch_format_progress(now, start, s.eta_at, 10, buf, sizeof(buf));
			watch_put(y, 38, buf, A_NORMAL);
			y++;
		}
		if (!ui->detail)
			return;
		y++;
	}
	if (y >= y1)
		return;
	snprintf(buf, sizeof(buf), "-- %s: recent builds ", w->name);
	watch_put(y++, 0, buf, A_BOLD);
	if (!ui->pane_builds || ui->pane_builder != w->id || !json_array_size(ui->pane_builds)) {
		watch_put(y, 2, "no builds", A_DIM);
		return;
	}
	json_array_foreach(ui->pane_builds, i, o)
	{
		if (y >= y1)
			break;
		struct watch_build b;
		watch_build_from_json(&b, o);
		double end = b.complete ? b.complete_at : now;
		cli_format_time(b.started_at, when, sizeof(when));
		cli_format_duration(b.started_at > 0 && end >= b.started_at ? end - b.started_at
									    : 0,
				    dur, sizeof(dur));
		snprintf(buf, sizeof(buf), "  #%-6lld", b.number);
		watch_put(y, 0, buf, A_NORMAL);
		watch_put(y, 10, watch_build_word(&b), watch_look_attr(ui, watch_build_look(&b)));
		snprintf(buf, sizeof(buf), "%s  %-8s %s", when, dur, b.state_string);
		watch_put(y, 21, buf, A_NORMAL);
		y++;
	}
}

static void watch_draw_status(struct watch_ui *ui)
{
	char line[512];
	int y = LINES - 1;

	move(y, 0);
	clrtoeol();
	switch (ui->mode) {
	case MODE_FILTER:
		snprintf(line, sizeof(line), "filter: %s_   (Enter keep, Esc clear)", ui->filter);
		watch_put(y, 0, line, A_BOLD);
		return;
	case MODE_CONFIRM_FORCE: {
		struct watch_builder *w = watch_selected(ui, NULL);
		snprintf(line, sizeof(line), "force a build of '%s'? (y/n)", w ? w->name : "?");
		watch_put(y, 0, line, A_BOLD | A_REVERSE);
		return;
	}
	case MODE_CONFIRM_STOP:
		snprintf(line, sizeof(line), "stop build #%lld (id %lld)? (y/n)",
			 ui->confirm_number, ui->confirm_buildid);
		watch_put(y, 0, line, A_BOLD | A_REVERSE);
		return;
	case MODE_NORMAL:
		break;
	}
	if (ui->msg_until > clock_mono_ms()) {
		watch_put(y, 0, ui->msg, A_BOLD);
		return;
	}
	if (!ui->api_ok && ui->api_error[0]) {
		watch_put(y, 0, ui->api_error, watch_look_attr(ui, WATCH_FAILURE));
		return;
	}
	snprintf(line, sizeof(line),
		 "%s j/k select  Enter details  f force  s stop  / filter  r refresh  q quit%s%s",
		 ui->detail ? "Esc back " : "", ui->filter[0] ? "   filter: " : "", ui->filter);
	watch_put(y, 0, line, A_DIM);
}

static void watch_draw(struct watch_ui *ui)
{
	double now = clock_wall();
	size_t *idx = xcalloc(ui->st.n + 1, sizeof(*idx));
	size_t n = watch_visible(ui, idx), row = 0;
	struct watch_builder *w = watch_selected(ui, &row);

	erase();
	watch_draw_header(ui);
	if (ui->detail) {
		watch_draw_pane(ui, w, 2, LINES - 1, now);
	} else {
		struct watch_cols c = watch_layout(ui);
		int pane = (LINES - 3) / 3;
		if (pane < 3)
			pane = LINES >= 10 ? 3 : 0;
		int list_top = 2, list_rows = LINES - 3 - pane - 1;
		if (list_rows < 1)
			list_rows = 1;
		watch_put(1, c.name, "BUILDER", A_BOLD);
		watch_put(1, c.last, "LAST", A_BOLD);
		watch_put(1, c.build, "BUILD", A_BOLD);
		watch_put(1, c.step, "STEP", A_BOLD);
		watch_put(1, c.progress, "PROGRESS", A_BOLD);
		watch_put(1, c.recent, "RECENT", A_BOLD);
		if (row < ui->top)
			ui->top = row;
		if (row >= ui->top + (size_t)list_rows)
			ui->top = row - (size_t)list_rows + 1;
		/* a taller window (or a shorter list) shows from the top again */
		if (ui->top + (size_t)list_rows > n)
			ui->top = n > (size_t)list_rows ? n - (size_t)list_rows : 0;
		for (size_t k = ui->top; k < n && k < ui->top + (size_t)list_rows; k++)
			watch_draw_row(ui, &c, list_top + (int)(k - ui->top), &ui->st.b[idx[k]],
				       k == row, now);
		if (n == 0)
			watch_put(list_top, 1,
				  ui->filter[0] ? "no builder matches the filter" : "no builders",
				  A_DIM);
		if (pane > 0) {
			int y0 = list_top + list_rows;
			mvhline(y0, 0, ACS_HLINE, COLS);
			watch_draw_pane(ui, w, y0 + 1, LINES - 1, now);
		}
	}
	watch_draw_status(ui);
	free(idx);
	refresh();
}

/* ---- keys --------------------------------------------------------------------- */

static bool watch_is_yes(int ch)
{
	return ch == 'y' || ch == 'Y';
}

static void watch_key(struct watch_ui *ui, int ch)
{
	struct watch_builder *w;
	size_t len;

	switch (ui->mode) {
	case MODE_FILTER:
		len = strlen(ui->filter);
		if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
			ui->mode = MODE_NORMAL;
		} else if (ch == 27) {
			ui->filter[0] = '\0';
			ui->mode = MODE_NORMAL;
		} else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
			if (len)
				ui->filter[len - 1] = '\0';
		} else if (ch >= 32 && ch < 127 && len < WATCH_FILTER_MAX) {
			ui->filter[len] = (char)ch;
			ui->filter[len + 1] = '\0';
		}
		ui->top = 0;
		return;
	case MODE_CONFIRM_FORCE:
		ui->mode = MODE_NORMAL;
		w = watch_selected(ui, NULL);
		if (watch_is_yes(ch) && w)
			watch_force(ui, w);
		else
			watch_message(ui, "not forced");
		return;
	case MODE_CONFIRM_STOP:
		ui->mode = MODE_NORMAL;
		if (watch_is_yes(ch))
			watch_stop(ui, ui->confirm_buildid, ui->confirm_number);
		else
			watch_message(ui, "not stopped");
		return;
	case MODE_NORMAL:
		break;
	}
	switch (ch) {
	case 'q':
	case 'Q':
		ui->quit = true;
		break;
	case KEY_UP:
	case 'k':
		watch_move(ui, -1);
		break;
	case KEY_DOWN:
	case 'j':
		watch_move(ui, 1);
		break;
	case KEY_PPAGE:
		watch_move(ui, -(LINES / 2));
		break;
	case KEY_NPAGE:
		watch_move(ui, LINES / 2);
		break;
	case KEY_HOME:
	case 'g':
		watch_move(ui, -(int)ui->st.n);
		break;
	case KEY_END:
	case 'G':
		watch_move(ui, (int)ui->st.n);
		break;
	case '\n':
	case '\r':
	case KEY_ENTER:
		ui->detail = true;
		break;
	case 27:
	case KEY_BACKSPACE:
	case 127:
	case 8:
		ui->detail = false;
		break;
	case '/':
		ui->mode = MODE_FILTER;
		break;
	case 'r':
		watch_refresh(ui);
		watch_message(ui, ui->api_ok ? "refreshed" : "refresh failed");
		break;
	case 'f':
		if (watch_selected(ui, NULL))
			ui->mode = MODE_CONFIRM_FORCE;
		break;
	case 's':
		w = watch_selected(ui, NULL);
		if (w && w->running.buildid > 0) {
			ui->confirm_buildid = w->running.buildid;
			ui->confirm_number = w->running.number;
			ui->mode = MODE_CONFIRM_STOP;
		} else {
			watch_message(ui, "'%s' has no running build", w ? w->name : "?");
		}
		break;
	default:
		break;
	}
}

/* ---- the loop ------------------------------------------------------------------ */

static uint64_t watch_min_deadline(uint64_t a, uint64_t b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

static int watch_loop(struct watch_ui *ui)
{
	for (;;) {
		uint64_t now = clock_mono_ms();
		int ch;

		if (ui->reconnect_at && now >= ui->reconnect_at)
			watch_connect(ui);
		if (ui->refresh_at && now >= ui->refresh_at)
			watch_refresh(ui);
		if (!ui->ws && !ui->reconnect_at && !ui->ws_unsupported)
			ui->reconnect_at = now + ui->backoff_ms;
		/* re-read anyway from time to time: what /ws does not publish */
		if (!ui->refresh_at)
			ui->refresh_at =
				ui->last_refresh + (ui->ws ? WATCH_IDLE_REFRESH_MS : WATCH_POLL_MS);
		/* the selection moved (keys, the filter, a builder gone): its pane */
		struct watch_builder *sel = watch_selected(ui, NULL);
		if ((sel ? sel->id : -1) != ui->pane_builder)
			watch_read_pane(ui);
		watch_draw(ui);

		now = clock_mono_ms();
		uint64_t wall_ms = (uint64_t)(clock_wall() * 1000);
		uint64_t deadline = now + 1000 - wall_ms % 1000; /* the clock's next second */
		deadline = watch_min_deadline(deadline, ui->refresh_at);
		deadline = watch_min_deadline(deadline, ui->reconnect_at);
		if (ui->msg_until > now)
			deadline = watch_min_deadline(deadline, ui->msg_until);
		int timeout = deadline > now ? (int)(deadline - now) : 0;

		struct pollfd pfd[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
					{.fd = ui->ws ? ws_fd(ui->ws) : -1, .events = POLLIN}};
		int r = poll(pfd, 2, timeout);
		if (r < 0 && errno != EINTR)
			return cli_error("poll: %s", strerror(errno));
		if (watch_stop_signal)
			return CLI_EXIT_OK;
		if (r > 0 && (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL)) &&
		    !(pfd[0].revents & POLLIN))
			return CLI_EXIT_OK; /* the terminal went away */
		if (ui->ws && r > 0 && pfd[1].revents) {
			int e = ws_wait(ui->ws, 0);
			if (e < 0)
				watch_ws_lost(ui);
			else if (e > 0)
				watch_plan_refresh(ui);
		}
		/* keys, and KEY_RESIZE after SIGWINCH (poll was interrupted) */
		while ((ch = getch()) != ERR) {
			if (ch == KEY_RESIZE) {
				/* the next draw uses the new LINES/COLS, scrolled only as
				 * far as the selection needs */
				ui->top = 0;
				continue;
			}
			watch_key(ui, ch);
			if (ui->quit)
				return CLI_EXIT_OK;
		}
	}
}

static int watch_once(struct watch_args *a, struct http_client *c)
{
	struct watch_state st = {0};

	if (watch_read_state(c, &st) < 0)
		return cli_fail(c);
	watch_print_once(&st, c->base, a->filter, clock_wall(), stdout);
	watch_state_release(&st);
	return CLI_EXIT_OK;
}

static int watch_option(void *state, int opt, const char *arg)
{
	struct watch_args *a = state;

	switch (opt) {
	case WATCH_OPT_ONCE:
		a->once = true;
		break;
	case WATCH_OPT_NO_COLOR:
		a->no_color = true;
		break;
	default: /* WATCH_OPT_FILTER */
		if (strlen(arg) > WATCH_FILTER_MAX)
			return cli_usage_error(&cmd_watch, "filter longer than %d characters",
					       WATCH_FILTER_MAX);
		snprintf(a->filter, sizeof(a->filter), "%s", arg);
		break;
	}
	return CLI_EXIT_OK;
}

static void watch_ui_release(struct watch_ui *ui)
{
	ws_close(ui->ws);
	ui->ws = NULL;
	watch_state_release(&ui->st);
	json_decref(ui->pane_builds);
	json_decref(ui->pane_steps);
	ui->pane_builds = ui->pane_steps = NULL;
}

static int watch_exec(void *state, struct http_client *c)
{
	struct watch_args *a = state;
	struct watch_ui ui = {.c = c, .backoff_ms = WATCH_BACKOFF_MIN_MS, .sel_id = -1};
	const char *nc = getenv("NO_COLOR");
	int r;

	if (a->once)
		return watch_once(a, c);
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return cli_error("watch needs a terminal (use --once for a snapshot)");
	snprintf(ui.filter, sizeof(ui.filter), "%s", a->filter);
	ui.color = !a->no_color && !(nc && *nc);

	/* the first read before curses: an unreachable master is a plain error */
	watch_refresh(&ui);
	if (!ui.api_ok) {
		watch_ui_release(&ui);
		return cli_fail(c);
	}
	setlocale(LC_ALL, "");
	/* newterm, not initscr: an unknown or dumb TERM is an error here, not an exit */
	const char *term = getenv("TERM");
	SCREEN *scr = term && *term && strcmp(term, "dumb") ? newterm(NULL, stdout, stdin) : NULL;
	if (!scr) {
		watch_ui_release(&ui);
		return cli_error("cannot drive terminal '%s' (TERM) with curses; use --once",
				 term ? term : "");
	}
	struct sigaction sa = {.sa_handler = watch_on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	watch_colors(&ui);
	watch_connect(&ui);

	r = watch_loop(&ui);

	endwin();
	delscreen(scr);
	watch_ui_release(&ui);
	return r;
}

const struct cmd cmd_watch = {
	.name = "watch",
	.usage = "[--once] [--no-color] [--filter TEXT]",
	.summary = "a live terminal view of builders, running builds and recent results",
	.flags = CMD_MASTER,
	.optstring = "",
	.options = watch_longopts,
	.options_help = watch_options,
	.state_size = sizeof(struct watch_args),
	.option = watch_option,
	.exec = watch_exec,
};
