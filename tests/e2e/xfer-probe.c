/*
 * kiln-xfer-probe BASEDIR: a test-only master (master.lua, database, engine
 * and worker listener as `kiln master` starts them) that waits for a worker
 * to attach, then runs file transfers on it directly through transfer.c,
 * without steps: upload_file (keepstamp) of WORKER/xfer/src.bin,
 * upload_directory (gz) of WORKER/xfer/tree, download_file of
 * BASEDIR/dl-src.bin to WORKER/xfer/dl.bin (mode 0600) and of a string to
 * WORKER/xfer/str.txt.  Uploads land in BASEDIR/artifacts/1/.  Prints one
 * "RESULT name ..." line per transfer and exits (t0770 drives it).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/engine.h"
#include "master/events.h"
#include "master/http.h"
#include "master/master.h"
#include "master/transfer.h"
#include "proto/msg.h"

static struct master m;
static struct wconn *w;
static int step;
static bool finished;
static int rc = -1;
static uv_timer_t tick;
static int ticks;

static void probe_next(void);

static void probe_update(void *ud, const char *key, const msgpack_object *value)
{
	(void)ud;
	int64_t v;
	if (!strcmp(key, "rc") && proto_obj_int(value, &v))
		rc = (int)v;
}

static void probe_complete(void *ud, int status, const char *failure,
			   const struct transfer_result *res)
{
	printf("RESULT %s status=%d failure=%s res_status=%d done=%d bytes=%llu rc=%d "
	       "entries=%llu error=%s\n",
	       (const char *)ud, status, failure ? "yes" : "no", res->status, res->done,
	       (unsigned long long)res->bytes, rc, (unsigned long long)res->entries,
	       res->error ? res->error : "-");
	if (res->path) {
		printf("SHA256 %s ", (const char *)ud);
		for (int i = 0; i < 32; i++)
			printf("%02x", res->sha256[i]);
		printf("\n");
	}
	fflush(stdout);
	step++;
	probe_next();
}

static const struct transfer_cb probe_cb = {probe_update, probe_complete};

static void probe_start(const char *cmd, struct proto_enc *args, uint32_t n, struct transfer *t,
			const char *name)
{
	struct rcmd *c;
	rc = -1;
	if (wconn_start_command(w, cmd, NULL, args, n, transfer_rcmd_ops(), t, &c) < 0) {
		transfer_abort(t);
		printf("RESULT %s not-started\n", name);
		finished = true;
	}
	proto_enc_release(args);
}

static void probe_next(void)
{
	_cleanup_free_ char *root = xasprintf("%s/artifacts/1", m.basedir);
	struct proto_enc a;
	proto_enc_init(&a);
	struct transfer *t = NULL;
	int r = 0;
	switch (step) {
	case 0: {
		struct transfer_upload_opts o = {.root = root, .dest = "up/src.bin", .mode = 0640};
		r = transfer_upload_file_begin(m.loop, &o, &probe_cb, "upload_file", &t);
		if (r < 0)
			break;
		_cleanup_free_ char *p = wconn_path(w, w->basedir, "xfer", "src.bin");
		proto_pack_str(&a, "path");
		proto_pack_str(&a, p);
		proto_pack_str(&a, "maxsize");
		proto_pack_nil(&a);
		proto_pack_str(&a, "blocksize");
		proto_pack_int(&a, 262144);
		proto_pack_str(&a, "keepstamp");
		proto_pack_bool(&a, true);
		proto_pack_str(&a, "workdir");
		proto_pack_str(&a, w->basedir);
		proto_pack_str(&a, "workersrc");
		proto_pack_str(&a, "xfer/src.bin");
		probe_start("upload_file", &a, 6, t, "upload_file");
		return;
	}
	case 1: {
		struct transfer_upload_opts o = {.root = root, .dest = "tree", .mode = -1};
		r = transfer_upload_dir_begin(m.loop, &o, &probe_cb, "upload_directory", &t);
		if (r < 0)
			break;
		_cleanup_free_ char *p = wconn_path(w, w->basedir, "xfer", "tree");
		proto_pack_str(&a, "path");
		proto_pack_str(&a, p);
		proto_pack_str(&a, "maxsize");
		proto_pack_nil(&a);
		proto_pack_str(&a, "blocksize");
		proto_pack_int(&a, 16384);
		proto_pack_str(&a, "compress");
		proto_pack_str(&a, "gz");
		proto_pack_str(&a, "workdir");
		proto_pack_str(&a, w->basedir);
		proto_pack_str(&a, "workersrc");
		proto_pack_str(&a, "xfer/tree");
		probe_start("upload_directory", &a, 6, t, "upload_directory");
		return;
	}
	case 2:
	case 3: {
		const char *name = step == 2 ? "download_file" : "download_string";
		if (step == 2) {
			_cleanup_free_ char *src = xasprintf("%s/dl-src.bin", m.basedir);
			r = transfer_download_file_begin(m.loop, src, &probe_cb, (void *)name, &t);
		} else {
			static const char text[] = "{\"branch\": \"main\", \"n\": 42}\n";
			r = transfer_download_string_begin(m.loop, text, sizeof(text) - 1,
							   &probe_cb, (void *)name, &t);
		}
		if (r < 0)
			break;
		_cleanup_free_ char *p =
			wconn_path(w, w->basedir, "xfer", step == 2 ? "dl.bin" : "str.txt");
		proto_pack_str(&a, "path");
		proto_pack_str(&a, p);
		proto_pack_str(&a, "maxsize");
		proto_pack_nil(&a);
		proto_pack_str(&a, "blocksize");
		proto_pack_int(&a, 16384);
		proto_pack_str(&a, "mode");
		if (step == 2)
			proto_pack_int(&a, 0600);
		else
			proto_pack_nil(&a);
		proto_pack_str(&a, "workdir");
		proto_pack_str(&a, w->basedir);
		proto_pack_str(&a, "workerdest");
		proto_pack_str(&a, "xfer/x");
		probe_start("download_file", &a, 6, t, name);
		return;
	}
	default:
		finished = true;
		proto_enc_release(&a);
		return;
	}
	printf("RESULT step%d begin-failed %d\n", step, r);
	proto_enc_release(&a);
	finished = true;
}

static void probe_tick(uv_timer_t *t)
{
	(void)t;
	if (finished || ++ticks > 1200) { /* 60 s bound */
		m.stopping = true;
		uv_stop(m.loop);
		return;
	}
	if (w)
		return;
	for (struct wconn *c = m.engine->workers; c; c = c->next)
		if (c->attached) {
			w = c;
			wconn_ref(w);
			probe_next();
			return;
		}
}

static void probe_close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: kiln-xfer-probe BASEDIR\n");
		return 2;
	}
	uv_loop_t loop;
	uv_loop_init(&loop);
	signal(SIGPIPE, SIG_IGN);
	m.loop = &loop;
	m.basedir = realpath(argv[1], NULL);
	if (!m.basedir)
		return 1;
	m.name = xasprintf("probe:%s", m.basedir);
	char *err = NULL;
	if (config_load(m.basedir, &m.cfg, &err) < 0) {
		fprintf(stderr, "%s\n", err ? err : "config");
		return 1;
	}
	_cleanup_free_ char *root = xasprintf("%s/artifacts/1", m.basedir);
	if (fsutil_mkdir_p(root, 0755) < 0 || db_open(&loop, m.cfg->db_url, m.basedir, &m.db) < 0 ||
	    db_master_register(m.db, m.name, &m.masterid) < 0)
		return 1;
	m.events = events_new();
	if (engine_new(&m, &m.engine) < 0 ||
	    http_server_start(&m, engine_worker_ops(m.engine), &m.http) < 0)
		return 1;
	uv_timer_init(&loop, &tick);
	uv_timer_start(&tick, probe_tick, 50, 50);
	while (!m.stopping)
		uv_run(&loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&tick, NULL);
	printf("PROBE %s\n", finished ? "finished" : "timed-out");
	fflush(stdout);
	engine_stop(m.engine);
	http_server_stop(m.http);
	wconn_unref(w);
	engine_free(m.engine);
	db_close(m.db);
	events_free(m.events);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_walk(&loop, probe_close_walk, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	config_free(m.cfg);
	free(m.basedir);
	free(m.name);
	return finished ? 0 : 1;
}
