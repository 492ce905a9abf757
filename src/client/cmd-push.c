/*
 * `kiln push`: runs commands on this machine and pushes their results to
 * the master as they end (slice "push", docs/PUSH.md, docs/CLIENT.md;
 * pony-build's client model).  A submission is opened with POST
 * /api/v2/push ("finished": false, which answers an update token), each
 * command's step (status, stdout, stderr, times, command line) is appended
 * with POST /push/ID/steps as soon as it ends, and POST /push/ID/finish
 * closes it.  The exit status is the commands': 0 when all succeed, else
 * the first failing one's (later steps are not run).  --check asks the
 * master whether a build is needed (GET /push/check) instead.
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "common/err.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define PUSH_CLIENT_LOG_MAX (200u << 10) /* stdout or stderr kept per step (the rest is cut) */
#define PUSH_CLIENT_TAGS_MAX 16
#define PUSH_CLIENT_SETS_MAX 16

static const char push_options[] =
	"  -p, --package P           what is built (default: $KILN_PUSH_PACKAGE)\n"
	"  -H, --host H              this machine's name (default: its hostname)\n"
	"  -a, --arch A              its architecture (default: uname -m)\n"
	"  -T, --tag T               a tag (repeatable, at most 16)\n"
	"  -s, --set KEY=VALUE       another client key (repeatable, at most 16)\n"
	"  -r, --revision R          the revision built\n"
	"  -S, --step NAME           the first step's name (default: the command's name);\n"
	"                            more steps follow the command as\n"
	"                            --step NAME -- CMD... (see docs/CLIENT.md)\n"
	"  -C, --check               do not run: ask the master whether a build is needed\n"
	"                            (exit 0: yes, 3: no, with the reason on stdout)\n"
	"  -A, --max-age SECS        with --check: a result older than SECS is stale\n"
	"  -q, --quiet               do not copy the commands' output to this terminal\n";

static const struct option push_longopts[] = {
	{"package", required_argument, NULL, 'p'},
	{"host", required_argument, NULL, 'H'},
	{"arch", required_argument, NULL, 'a'},
	{"tag", required_argument, NULL, 'T'},
	{"set", required_argument, NULL, 's'},
	{"revision", required_argument, NULL, 'r'},
	{"step", required_argument, NULL, 'S'},
	{"check", no_argument, NULL, 'C'},
	{"max-age", required_argument, NULL, 'A'},
	{"quiet", no_argument, NULL, 'q'},
	{0},
};

struct push_cmd_step {
	const char *name; /* borrowed (argv), or NULL: the command's name */
	char **argv;      /* borrowed from argv, NULL-terminated (owned array) */
};

struct push_args {
	const char *package, *host, *arch, *revision, *first_name; /* borrowed */
	const char *tags[PUSH_CLIENT_TAGS_MAX];
	size_t ntags;
	const char *sets[PUSH_CLIENT_SETS_MAX];
	size_t nsets;
	bool check, quiet;
	double max_age; /* < 0: not given */
	struct push_cmd_step *steps;
	size_t nsteps;
};

static void push_init(void *state)
{
	struct push_args *a = state;
	a->max_age = -1;
}

static int push_option(void *state, int opt, const char *arg)
{
	struct push_args *a = state;
	switch (opt) {
	case 'p':
		a->package = arg;
		break;
	case 'H':
		a->host = arg;
		break;
	case 'a':
		a->arch = arg;
		break;
	case 'r':
		a->revision = arg;
		break;
	case 'S':
		a->first_name = arg;
		break;
	case 'T':
		if (a->ntags == PUSH_CLIENT_TAGS_MAX)
			return cli_usage_error(&cmd_push, "at most %d --tag", PUSH_CLIENT_TAGS_MAX);
		a->tags[a->ntags++] = arg;
		break;
	case 's':
		if (a->nsets == PUSH_CLIENT_SETS_MAX)
			return cli_usage_error(&cmd_push, "at most %d --set", PUSH_CLIENT_SETS_MAX);
		if (!strchr(arg, '=') || arg[0] == '=')
			return cli_usage_error(&cmd_push, "bad --set '%s': KEY=VALUE", arg);
		a->sets[a->nsets++] = arg;
		break;
	case 'C':
		a->check = true;
		break;
	case 'A':
		if (cli_parse_seconds(arg, &a->max_age) < 0)
			return cli_usage_error(&cmd_push, "bad --max-age '%s'", arg);
		break;
	case 'q':
		a->quiet = true;
		break;
	}
	return CLI_EXIT_OK;
}

/* CMD... [--step NAME -- CMD...]... */
static int push_args_parse(void *state, int argc, char **argv)
{
	struct push_args *a = state;
	if (a->check) {
		if (argc)
			return cli_usage_error(&cmd_push, "--check runs nothing: unexpected '%s'",
					       argv[0]);
		return CLI_EXIT_OK;
	}
	if (argc == 0)
		return cli_usage_error(&cmd_push,
				       "missing the command: kiln push [OPTIONS] -- CMD...");
	int i = 0;
	const char *name = a->first_name;
	while (i < argc) {
		int start = i;
		while (i < argc && strcmp(argv[i], "--step"))
			i++;
		if (i == start)
			return cli_usage_error(&cmd_push, "a step without a command");
		a->steps = xreallocarray(a->steps, a->nsteps + 1, sizeof(*a->steps));
		struct push_cmd_step *st = &a->steps[a->nsteps++];
		st->name = name;
		st->argv = xcalloc((size_t)(i - start) + 1, sizeof(char *));
		for (int k = start; k < i; k++)
			st->argv[k - start] = argv[k];
		if (i == argc)
			break;
		/* --step NAME -- CMD... */
		if (i + 2 >= argc || strcmp(argv[i + 2], "--"))
			return cli_usage_error(&cmd_push, "expected --step NAME -- CMD...");
		name = argv[i + 1];
		i += 3;
		if (i == argc)
			return cli_usage_error(&cmd_push, "--step %s: missing the command", name);
	}
	return CLI_EXIT_OK;
}

static void push_release(void *state)
{
	struct push_args *a = state;
	for (size_t i = 0; i < a->nsteps; i++)
		free(a->steps[i].argv);
	free(a->steps);
}

static double push_now(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

struct push_capture {
	char *p;
	size_t n;
	bool cut;
};

static void push_keep(struct push_capture *c, const char *d, size_t n)
{
	if (c->n + n > PUSH_CLIENT_LOG_MAX) {
		n = PUSH_CLIENT_LOG_MAX - c->n;
		c->cut = true;
	}
	if (!n)
		return;
	c->p = xrealloc(c->p, c->n + n + 1);
	memcpy(c->p + c->n, d, n);
	c->n += n;
	c->p[c->n] = '\0';
}

/* Runs argv with its output captured (and copied unless quiet): the exit
 * status (128 + signal when killed), or -1 if it could not start. */
static int push_exec(char **argv, bool quiet, struct push_capture *out, struct push_capture *err)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execvp(argv[0], argv);
		fprintf(stderr, "kiln push: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
	int open_fds = 2;
	char buf[65536];
	while (open_fds) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t r = read(fds[i].fd, buf, sizeof(buf));
			if (r <= 0) {
				if (r < 0 && errno == EINTR)
					continue;
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
				continue;
			}
			push_keep(i ? err : out, buf, (size_t)r);
			if (!quiet)
				(void)!write(i ? 2 : 1, buf, (size_t)r);
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* POST path with doc (stolen): 0 and *ret (the answer), or the error printed. */
static int push_post(struct http_client *c, const char *path, json_t *doc, json_t **ret)
{
	char *body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!body) {
		cli_error("cannot encode the push");
		return -1;
	}
	char *text = NULL;
	int r = http_post_text(c, path, "application/json", body, strlen(body), &text);
	free(body);
	if (r < 0) {
		cli_fail(c);
		return -1;
	}
	json_t *ans = json_loads(text, 0, NULL);
	free(text);
	if (!json_is_object(ans)) {
		json_decref(ans);
		cli_error("the master's answer to %s is not JSON", path);
		return -1;
	}
	*ret = ans;
	return 0;
}

/* Output as a JSON string: NULs, and every byte past ASCII when the text
 * is not valid UTF-8, become '?' (the master takes text logs). */
static json_t *push_text(struct push_capture *c)
{
	if (!c->n)
		return json_string("");
	for (size_t i = 0; i < c->n; i++)
		if (!c->p[i])
			c->p[i] = '?';
	json_t *v = json_stringn(c->p, c->n);
	if (v)
		return v;
	for (size_t i = 0; i < c->n; i++)
		if ((unsigned char)c->p[i] >= 0x80)
			c->p[i] = '?';
	return json_stringn(c->p, c->n);
}

static json_t *push_step_json(const char *name, char **argv, int status, double t0, double t1,
			      struct push_capture *out, struct push_capture *err)
{
	json_t *cmd = json_array();
	for (char **a = argv; *a; a++) {
		json_t *v = json_string(*a); /* NULL when not UTF-8 */
		json_array_append_new(cmd, v ? v : json_string("?"));
	}
	json_t *st = json_pack("{s:s,s:i,s:o,s:f,s:f}", "name", name, "status", status, "cmd", cmd,
			       "started_at", t0, "finished_at", t1);
	static const char note[] = "\n[kiln push: the rest of this output was cut at 200 KiB]\n";
	struct push_capture *cs[2] = {out, err};
	for (int i = 0; i < 2; i++)
		if (cs[i]->cut) { /* a note past the cap: the master's default cap has room */
			cs[i]->p = xrealloc(cs[i]->p, cs[i]->n + sizeof(note));
			memcpy(cs[i]->p + cs[i]->n, note, sizeof(note));
			cs[i]->n += sizeof(note) - 1;
		}
	json_object_set_new(st, "stdout", push_text(out));
	json_object_set_new(st, "stderr", push_text(err));
	return st;
}

static const char *push_default_host(char *buf, size_t n)
{
	if (gethostname(buf, n) < 0 || !*buf)
		snprintf(buf, n, "unknown");
	buf[n - 1] = '\0';
	return buf;
}

static int push_check(struct push_args *a, struct http_client *c)
{
	_cleanup_free_ char *pe = http_escape(a->package), *he = http_escape(a->host);
	_cleanup_free_ char *re = a->revision ? http_escape(a->revision) : NULL;
	char age[64] = "";
	if (a->max_age >= 0)
		snprintf(age, sizeof(age), "&max_age=%.0f", a->max_age);
	json_t *doc = NULL;
	int r = http_getf_json(c, &doc, "/api/v2/push/check?package=%s&host=%s%s%s%s", pe, he,
			       re ? "&revision=" : "", re ? re : "", age);
	if (r < 0)
		return cli_fail(c);
	bool build = cli_json_bool(doc, "should_build", true);
	printf("%s: %s\n", build ? "build" : "up to date", cli_json_str(doc, "reason", ""));
	json_decref(doc);
	return build ? 0 : 3;
}

static int push_exec_all(void *state, struct http_client *c)
{
	struct push_args *a = state;
	char hostbuf[256];
	struct utsname u;
	if (!a->package)
		a->package = getenv("KILN_PUSH_PACKAGE");
	if (!a->package || !*a->package)
		return cli_usage_error(&cmd_push, "missing --package (or $KILN_PUSH_PACKAGE)");
	if (!a->host)
		a->host = push_default_host(hostbuf, sizeof(hostbuf));
	if (!a->arch && uname(&u) == 0)
		a->arch = u.machine;
	if (a->check)
		return push_check(a, c);

	json_t *client = json_pack("{s:s,s:s}", "package", a->package, "host", a->host);
	if (a->arch)
		json_object_set_new(client, "arch", json_string(a->arch));
	json_t *tags = json_array();
	for (size_t i = 0; i < a->ntags; i++)
		json_array_append_new(tags, json_string(a->tags[i]));
	json_object_set_new(client, "tags", tags);
	for (size_t i = 0; i < a->nsets; i++) {
		const char *eq = strchr(a->sets[i], '=');
		_cleanup_free_ char *k = xstrndup(a->sets[i], (size_t)(eq - a->sets[i]));
		json_object_set_new(client, k, json_string(eq + 1));
	}
	json_t *bag = json_pack("{s:o,s:b,s:[]}", "client", client, "finished", 0, "steps");
	if (a->revision)
		json_object_set_new(bag, "revision", json_string(a->revision));
	json_t *ans = NULL;
	if (push_post(c, "/api/v2/push", bag, &ans) < 0)
		return CLI_EXIT_FAIL;
	long long id = cli_json_int(ans, "pushid", 0);
	_cleanup_free_ char *upd = xstrdup(cli_json_str(ans, "update_token", ""));
	json_decref(ans);
	if (id <= 0 || !*upd)
		return cli_error("the master did not open the push (no id or update token)");
	fprintf(stderr, "kiln push: push %lld opened (%s/api/v2/push/%lld)\n", id, c->base, id);

	int status = 0;
	char path[128];
	for (size_t i = 0; i < a->nsteps && status == 0; i++) {
		struct push_cmd_step *st = &a->steps[i];
		const char *base = strrchr(st->argv[0], '/');
		const char *name = st->name ? st->name : base ? base + 1 : st->argv[0];
		struct push_capture out = {0}, err = {0};
		double t0 = push_now();
		int rc = push_exec(st->argv, a->quiet, &out, &err);
		double t1 = push_now();
		if (rc < 0) {
			fprintf(stderr, "kiln push: cannot run '%s': %s\n", st->argv[0],
				strerror(errno));
			rc = 127;
		}
		status = rc;
		json_t *s = push_step_json(name, st->argv, rc, t0, t1, &out, &err);
		free(out.p);
		free(err.p);
		json_t *more = json_pack("{s:s,s:[o]}", "update_token", upd, "steps", s);
		snprintf(path, sizeof(path), "/api/v2/push/%lld/steps", id);
		if (push_post(c, path, more, &ans) < 0)
			fprintf(stderr, "kiln push: step '%s' was not pushed\n", name);
		else
			json_decref(ans);
	}
	snprintf(path, sizeof(path), "/api/v2/push/%lld/finish", id);
	if (push_post(c, path, json_pack("{s:s,s:[]}", "update_token", upd, "steps"), &ans) < 0)
		fprintf(stderr, "kiln push: push %lld was not finished\n", id);
	else
		json_decref(ans);
	fprintf(stderr, "kiln push: push %lld finished: %s (exit %d)\n", id,
		status ? "failure" : "success", status);
	return status;
}

const struct cmd cmd_push = {
	.name = "push",
	.usage = "[OPTIONS] -- CMD... [--step NAME -- CMD...]...",
	.summary = "run commands here and push their results to the master",
	.flags = CMD_MASTER,
	.optstring = "p:H:a:T:s:r:S:CA:q",
	.options = push_longopts,
	.options_help = push_options,
	.state_size = sizeof(struct push_args),
	.init = push_init,
	.option = push_option,
	.args = push_args_parse,
	.exec = push_exec_all,
	.release = push_release,
};
