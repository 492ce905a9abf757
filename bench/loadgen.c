/*
 * bench/loadgen.c: many fake workers from one process, for the `workers`
 * benchmark scenario.  Each connection is a minimal WebSocket client on libuv
 * that speaks the worker protocol's attach sequence (answers print,
 * get_worker_info, set_worker_settings; start_command with update rc 0 +
 * complete) and then idles, answering pings.  Not a worker: nothing runs.
 *
 * Usage: loadgen HOST:PORT COUNT PASSWORD [FIRST_INDEX [MAX_INFLIGHT]]
 * Workers are named w<FIRST_INDEX>..w<FIRST_INDEX+COUNT-1>.  Prints JSON lines
 * on stdout: {"event":"attached","n":N,"seconds":S} at every 10 % and when all
 * are attached (a connection counts as attached once it has answered its first
 * start_command, the master's mkdir), and {"event":"stats",...} on SIGTERM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <msgpack.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#define MAX_MSG (16u << 20)

struct conn {
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_timer_t retry;
	int idx;
	int tries;
	bool upgraded;
	bool attached;
	bool closing;
	uint64_t seq; /* our own request counter */
	char *in;     /* bytes received, not yet parsed */
	size_t in_len, in_cap;
	char *msg; /* reassembled fragmented message */
	size_t msg_len;
};

static uv_loop_t *loop;
static struct conn *conns;
static int count, first_index, max_inflight;
static int next_to_start, inflight, n_attached, n_failed, n_dropped, n_pings, n_msgs;
static int next_report;
static char host[256];
static int port;
static const char *password;
static uint64_t t_start;
static struct sockaddr_in addr;

static double elapsed(void)
{
	return (double)(uv_hrtime() - t_start) / 1e9;
}

static void start_some(void);
static void conn_start(struct conn *c);

static void on_write(uv_write_t *req, int status)
{
	(void)status;
	free(req->data);
	free(req);
}

static void send_raw(struct conn *c, char *data, size_t len)
{
	uv_write_t *req = malloc(sizeof(*req));
	uv_buf_t b = uv_buf_init(data, (unsigned)len);
	req->data = data;
	if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
		free(data);
		free(req);
	}
}

/* One masked client frame (RFC 6455 5.3) with OPCODE and PAYLOAD. */
static void send_frame(struct conn *c, int opcode, const void *payload, size_t len)
{
	char *f = malloc(len + 14);
	size_t h = 0;
	uint32_t mask = randombytes_random();
	f[h++] = (char)(0x80 | opcode);
	if (len < 126) {
		f[h++] = (char)(0x80 | len);
	} else if (len < 65536) {
		f[h++] = (char)(0x80 | 126);
		f[h++] = (char)(len >> 8);
		f[h++] = (char)len;
	} else {
		f[h++] = (char)(0x80 | 127);
		for (int i = 7; i >= 0; i--)
			f[h++] = (char)((uint64_t)len >> (8 * i));
	}
	memcpy(f + h, &mask, 4);
	const uint8_t *m = (const uint8_t *)(f + h);
	h += 4;
	for (size_t i = 0; i < len; i++)
		f[h + i] = (char)(((const uint8_t *)payload)[i] ^ m[i & 3]);
	send_raw(c, f, h + len);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void send_packed(struct conn *c, msgpack_sbuffer *sb)
{
	send_frame(c, 2, sb->data, sb->size);
	msgpack_sbuffer_destroy(sb);
}

static const msgpack_object *map_get(const msgpack_object *o, const char *key)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == kl &&
		    memcmp(kv->key.via.str.ptr, key, kl) == 0)
			return &kv->val;
	}
	return NULL;
}

static bool str_is(const msgpack_object *o, const char *s)
{
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	       memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static void conn_attached(struct conn *c)
{
	if (c->attached)
		return;
	c->attached = true;
	n_attached++;
	inflight--;
	if (n_attached == count || n_attached >= next_report) {
		printf("{\"event\":\"attached\",\"n\":%d,\"seconds\":%.3f}\n", n_attached,
		       elapsed());
		fflush(stdout);
		while (next_report <= n_attached)
			next_report += count / 10 > 0 ? count / 10 : 1;
	}
	start_some();
}

static void respond(struct conn *c, uint64_t seq, const msgpack_object *op)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	pack_str(&pk, "op");
	pack_str(&pk, "response");
	pack_str(&pk, "seq_number");
	msgpack_pack_uint64(&pk, seq);
	pack_str(&pk, "result");
	if (str_is(op, "get_worker_info")) {
		char basedir[64];
		snprintf(basedir, sizeof(basedir), "/nonexistent/loadgen/w%d",
			 c->idx + first_index);
		static const char *cmds[] = {
			"shell",        "mkdir",  "rmdir", "stat",        "glob",
			"listdir",      "rmfile", "cpdir", "upload_file", "upload_directory",
			"download_file"};
		msgpack_pack_map(&pk, 6);
		pack_str(&pk, "basedir");
		pack_str(&pk, basedir);
		pack_str(&pk, "system");
		pack_str(&pk, "posix");
		pack_str(&pk, "numcpus");
		msgpack_pack_int(&pk, 1);
		pack_str(&pk, "version");
		pack_str(&pk, "kiln-bench-loadgen");
		pack_str(&pk, "environ");
		msgpack_pack_map(&pk, 1);
		pack_str(&pk, "HOME");
		pack_str(&pk, "/nonexistent");
		pack_str(&pk, "worker_commands");
		msgpack_pack_map(&pk, sizeof(cmds) / sizeof(cmds[0]));
		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
			pack_str(&pk, cmds[i]);
			pack_str(&pk, "3.1");
		}
	} else {
		msgpack_pack_nil(&pk);
	}
	send_packed(c, &sb);
}

/* A start_command: reply, then update [["rc", 0], ["elapsed", 0.0]] and complete. */
static void run_command(struct conn *c, const msgpack_object *cmd_id)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	for (int k = 0; k < 2; k++) {
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 4);
		pack_str(&pk, "op");
		pack_str(&pk, k == 0 ? "update" : "complete");
		pack_str(&pk, "seq_number");
		msgpack_pack_uint64(&pk, c->seq++);
		pack_str(&pk, "command_id");
		msgpack_pack_object(&pk, *cmd_id);
		pack_str(&pk, "args");
		if (k == 0) {
			msgpack_pack_array(&pk, 2);
			msgpack_pack_array(&pk, 2);
			pack_str(&pk, "rc");
			msgpack_pack_int(&pk, 0);
			msgpack_pack_array(&pk, 2);
			pack_str(&pk, "elapsed");
			msgpack_pack_double(&pk, 0.0);
		} else {
			msgpack_pack_nil(&pk);
		}
		send_packed(c, &sb);
	}
}

static void handle_message(struct conn *c, const char *data, size_t len)
{
	msgpack_unpacked u;
	size_t off = 0;
	n_msgs++;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, data, len, &off) != MSGPACK_UNPACK_SUCCESS) {
		msgpack_unpacked_destroy(&u);
		return;
	}
	const msgpack_object *op = map_get(&u.data, "op");
	const msgpack_object *seq = map_get(&u.data, "seq_number");
	if (op && seq && !str_is(op, "response") && seq->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		respond(c, seq->via.u64, op);
		if (str_is(op, "start_command")) {
			const msgpack_object *id = map_get(&u.data, "command_id");
			if (id)
				run_command(c, id);
			conn_attached(c);
		}
	}
	msgpack_unpacked_destroy(&u);
}

static void on_retry(uv_timer_t *t)
{
	conn_start(t->data);
}

static void on_close(uv_handle_t *h)
{
	struct conn *c = h->data;
	free(c->in);
	free(c->msg);
	c->in = c->msg = NULL;
	c->in_len = c->in_cap = c->msg_len = 0;
	c->closing = false;
	if (!c->attached && c->tries < 5) {
		uv_timer_start(&c->retry, on_retry, 200, 0);
	} else if (!c->attached) {
		n_failed++;
		inflight--;
		start_some();
	}
}

static void conn_drop(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->attached) {
		n_dropped++;
		c->attached = false;
		n_attached--;
		inflight++; /* it reconnects like a real worker */
		c->tries = 0;
	}
	uv_close((uv_handle_t *)&c->tcp, on_close);
}

/* Parses complete frames from c->in. Returns false when the connection is dropped. */
static bool parse_frames(struct conn *c)
{
	size_t pos = 0;
	while (c->in_len - pos >= 2) {
		const uint8_t *p = (const uint8_t *)c->in + pos;
		size_t avail = c->in_len - pos, h = 2;
		bool fin = p[0] & 0x80, masked = p[1] & 0x80;
		int opcode = p[0] & 0x0f;
		uint64_t len = p[1] & 0x7f;
		if (len == 126) {
			if (avail < 4)
				break;
			len = ((uint64_t)p[2] << 8) | p[3];
			h = 4;
		} else if (len == 127) {
			if (avail < 10)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = (len << 8) | p[2 + i];
			h = 10;
		}
		if (len > MAX_MSG) {
			conn_drop(c);
			return false;
		}
		if (masked)
			h += 4;
		if (avail < h + len)
			break;
		char *payload = (char *)c->in + pos + h;
		if (masked)
			for (uint64_t i = 0; i < len; i++)
				payload[i] ^= (char)p[h - 4 + (i & 3)];
		if (opcode == 9) {
			n_pings++;
			send_frame(c, 10, payload, len);
		} else if (opcode == 8) {
			conn_drop(c);
			return false;
		} else if (opcode == 0 || opcode == 1 || opcode == 2) {
			if (fin && opcode != 0 && c->msg_len == 0) {
				handle_message(c, payload, len);
			} else {
				c->msg = realloc(c->msg, c->msg_len + len);
				memcpy(c->msg + c->msg_len, payload, len);
				c->msg_len += len;
				if (fin) {
					handle_message(c, c->msg, c->msg_len);
					c->msg_len = 0;
				}
			}
		}
		pos += h + len;
	}
	memmove(c->in, c->in + pos, c->in_len - pos);
	c->in_len -= pos;
	return true;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	(void)suggested;
	if (c->in_cap - c->in_len < 65536) {
		c->in_cap = c->in_len + 65536;
		c->in = realloc(c->in, c->in_cap);
	}
	*buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	(void)buf;
	if (n < 0) {
		conn_drop(c);
		return;
	}
	c->in_len += (size_t)n;
	if (!c->upgraded) {
		char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
		if (!end)
			return;
		if (c->in_len < 12 || memcmp(c->in, "HTTP/1.1 101", 12) != 0) {
			if (c->tries == 1)
				fprintf(stderr, "loadgen: w%d: %.*s\n", c->idx + first_index,
					(int)(strchr(c->in, '\r') - c->in), c->in);
			conn_drop(c);
			return;
		}
		c->upgraded = true;
		size_t hl = (size_t)(end + 4 - c->in);
		memmove(c->in, c->in + hl, c->in_len - hl);
		c->in_len -= hl;
	}
	parse_frames(c);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	if (status < 0) {
		conn_drop(c);
		return;
	}
	char cred[512], b64[700], *reqtext = malloc(1024);
	int cl = snprintf(cred, sizeof(cred), "w%d:%s", c->idx + first_index, password);
	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)cred, (size_t)cl,
			  sodium_base64_VARIANT_ORIGINAL);
	int n = snprintf(
		reqtext, 1024,
		"GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
		"Authorization: Basic %s\r\n\r\n",
		host, port, b64);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	send_raw(c, reqtext, (size_t)n);
}

static void conn_start(struct conn *c)
{
	c->tries++;
	c->upgraded = false;
	c->seq = 0;
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	c->creq.data = c;
	uv_tcp_nodelay(&c->tcp, 1);
	int r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&addr, on_connect);
	if (r < 0) {
		fprintf(stderr, "loadgen: connect: %s\n", uv_strerror(r));
		c->closing = true;
		uv_close((uv_handle_t *)&c->tcp, on_close);
	}
}

static void start_some(void)
{
	while (next_to_start < count && inflight < max_inflight) {
		struct conn *c = &conns[next_to_start++];
		inflight++;
		conn_start(c);
	}
}

static void on_signal(uv_signal_t *h, int sig)
{
	(void)sig;
	printf("{\"event\":\"stats\",\"attached\":%d,\"failed\":%d,\"dropped\":%d,\"pings\":%d,"
	       "\"messages\":%d,\"seconds\":%.3f}\n",
	       n_attached, n_failed, n_dropped, n_pings, n_msgs, elapsed());
	fflush(stdout);
	uv_signal_stop(h);
	exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr,
			"usage: loadgen HOST:PORT COUNT PASSWORD [FIRST_INDEX [MAX_INFLIGHT]]\n");
		return 2;
	}
	const char *colon = strrchr(argv[1], ':');
	if (!colon || (size_t)(colon - argv[1]) >= sizeof(host))
		return 2;
	memcpy(host, argv[1], (size_t)(colon - argv[1]));
	port = (int)strtol(colon + 1, NULL, 10);
	count = (int)strtol(argv[2], NULL, 10);
	password = argv[3];
	first_index = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 0;
	max_inflight = argc > 5 ? (int)strtol(argv[5], NULL, 10) : 256;
	if (count < 1 || max_inflight < 1 || sodium_init() < 0)
		return 2;
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)count + 64 > rl.rlim_cur)
		fprintf(stderr, "loadgen: RLIMIT_NOFILE %lu is too low for %d connections\n",
			(unsigned long)rl.rlim_cur, count);
	uv_ip4_addr(host, port, &addr);
	signal(SIGPIPE, SIG_IGN);
	loop = uv_default_loop();
	conns = calloc((size_t)count, sizeof(*conns));
	for (int i = 0; i < count; i++) {
		conns[i].idx = i;
		uv_timer_init(loop, &conns[i].retry);
		conns[i].retry.data = &conns[i];
	}
	uv_signal_t sig_term, sig_int;
	uv_signal_init(loop, &sig_term);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_init(loop, &sig_int);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	next_report = count / 10 > 0 ? count / 10 : 1;
	t_start = uv_hrtime();
	start_some();
	return uv_run(loop, UV_RUN_DEFAULT);
}
