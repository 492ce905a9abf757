/*
 * `kiln try`: sends the difference between the local git working tree and
 * its upstream base revision to a try scheduler (POST
 * /api/v2/tryschedulers/NAME, method "try"), which builds the base with the
 * patch applied.  The base is `git merge-base HEAD <upstream>`; the patch is
 * `git diff --binary BASE` (tracked files, staged or not).
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
	TRY_OPT_MASTER = CLI_OPT_FIRST_PRIVATE,
	TRY_OPT_BUILDERS,
	TRY_OPT_SCHEDULER,
	TRY_OPT_TRY_TOKEN,
	TRY_OPT_UPSTREAM,
	TRY_OPT_WHO,
	TRY_OPT_COMMENT,
	TRY_OPT_REPOSITORY,
};

static const char try_options[] =
	"  --master URL      the master (same as --url)\n"
	"  --builders A,B    builders to try on (default: every builder of the scheduler)\n"
	"  --scheduler NAME  try scheduler (default: the first the master has)\n"
	"  --try-token T     the scheduler's token (default: $KILN_TRY_TOKEN)\n"
	"  --upstream REF    base branch (default: the current branch's upstream, @{u})\n"
	"  -p, --patch-level N  strip N leading path components (default 1)\n"
	"  --repository URL  repository to record (default: the upstream remote's URL)\n"
	"  --who NAME        submitter (default: git config user.name)\n"
	"  --comment TEXT    comment recorded with the buildset\n" CLI_COMMON_HELP;

/* Runs git with argv, its stdout into out (capped); 0 when it exits 0. */
static int try_git(const char *const *argv, struct buf *out)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		execvp("git", (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	char chunk[65536];
	int r = 0;
	for (;;) {
		ssize_t n = read(fds[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (r == 0 && buf_add(out, chunk, (size_t)n) < 0)
			r = KILN_ETOOBIG; /* keep reading so git can finish */
	}
	close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		r = -EIO;
	return r;
}

/* One line of git output (trailing newline removed), owned; NULL on failure. */
static char *try_git_line(const char *const *argv)
{
	struct buf b;
	buf_init(&b, 64 * 1024);
	if (try_git(argv, &b) < 0) {
		buf_release(&b);
		return NULL;
	}
	while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r'))
		b.ptr[--b.len] = '\0';
	return buf_detach(&b, NULL);
}

static int try_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_OPTIONS,
		{"master", required_argument, NULL, TRY_OPT_MASTER},
		{"builders", required_argument, NULL, TRY_OPT_BUILDERS},
		{"scheduler", required_argument, NULL, TRY_OPT_SCHEDULER},
		{"try-token", required_argument, NULL, TRY_OPT_TRY_TOKEN},
		{"upstream", required_argument, NULL, TRY_OPT_UPSTREAM},
		{"patch-level", required_argument, NULL, 'p'},
		{"who", required_argument, NULL, TRY_OPT_WHO},
		{"comment", required_argument, NULL, TRY_OPT_COMMENT},
		{"repository", required_argument, NULL, TRY_OPT_REPOSITORY},
		{0},
	};
	struct cli_common co = {0};
	const char *builders = NULL, *scheduler = NULL, *upstream = NULL, *who = NULL;
	const char *comment = NULL, *repository = NULL;
	const char *token = getenv("KILN_TRY_TOKEN");
	long long level = 1;
	int opt;
	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":hp:", longopts, NULL)) != -1) {
		if (cli_common_opt(&co, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			cli_help(&cmd_try, try_options);
			return CLI_EXIT_OK;
		case TRY_OPT_MASTER:
			co.url = optarg;
			break;
		case TRY_OPT_BUILDERS:
			builders = optarg;
			break;
		case TRY_OPT_SCHEDULER:
			scheduler = optarg;
			break;
		case TRY_OPT_TRY_TOKEN:
			token = optarg;
			break;
		case TRY_OPT_UPSTREAM:
			upstream = optarg;
			break;
		case 'p':
			if (cli_parse_int(optarg, 0, 100, &level) < 0)
				return cli_usage_error(&cmd_try, "bad patch level '%s'", optarg);
			break;
		case TRY_OPT_WHO:
			who = optarg;
			break;
		case TRY_OPT_COMMENT:
			comment = optarg;
			break;
		case TRY_OPT_REPOSITORY:
			repository = optarg;
			break;
		default:
			return cli_bad_option(&cmd_try, opt, argc, argv);
		}
	}
	if (optind != argc)
		return cli_usage_error(&cmd_try, "unexpected argument '%s'", argv[optind]);
	if (!token || !*token)
		return cli_usage_error(&cmd_try,
				       "no try token: use --try-token or $KILN_TRY_TOKEN");

	/* the base: where the working tree left its upstream */
	_cleanup_free_ char *up = NULL;
	if (upstream)
		up = xstrdup(upstream);
	else {
		const char *a[] = {"git",  "rev-parse", "--abbrev-ref", "--symbolic-full-name",
				   "@{u}", NULL};
		up = try_git_line(a);
		if (!up || !*up)
			return cli_error("no upstream branch: set one (git branch -u) or use "
					 "--upstream REF");
	}
	const char *mb[] = {"git", "merge-base", "HEAD", up, NULL};
	_cleanup_free_ char *base = try_git_line(mb);
	if (!base || !*base)
		return cli_error("cannot find the merge base of HEAD and '%s'", up);
	/* "origin/main" -> remote "origin", branch "main" */
	const char *slash = strchr(up, '/');
	_cleanup_free_ char *remote = slash ? xstrndup(up, (size_t)(slash - up)) : NULL;
	const char *branch = slash ? slash + 1 : up;
	_cleanup_free_ char *repo = NULL;
	if (!repository && remote) {
		_cleanup_free_ char *key = xasprintf("remote.%s.url", remote);
		const char *a[] = {"git", "config", "--get", key, NULL};
		repo = try_git_line(a);
	}
	_cleanup_free_ char *user = NULL;
	if (!who) {
		const char *a[] = {"git", "config", "--get", "user.name", NULL};
		user = try_git_line(a);
	}

	struct buf diff;
	buf_init(&diff, KILN_MAX_PATCH_BYTES);
	const char *da[] = {"git", "diff", "--binary", base, NULL};
	int r = try_git(da, &diff);
	if (r == KILN_ETOOBIG) {
		buf_release(&diff);
		return cli_error("the patch is larger than %u bytes",
				 (unsigned)KILN_MAX_PATCH_BYTES);
	}
	if (r < 0) {
		buf_release(&diff);
		return cli_error("git diff --binary %s failed", base);
	}
	if (diff.len == 0) {
		buf_release(&diff);
		return cli_error("no changes against %s (%s): nothing to try", base, up);
	}
	size_t b64len = sodium_base64_ENCODED_LEN(diff.len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = xmalloc(b64len);
	sodium_bin2base64(b64, b64len, (const unsigned char *)diff.ptr, diff.len,
			  sodium_base64_VARIANT_ORIGINAL);
	size_t patch_bytes = diff.len;
	buf_release(&diff);

	json_t *params = json_object();
	json_object_set_new(params, "token", json_string(token));
	json_object_set_new(params, "revision", json_string(base));
	json_object_set_new(params, "branch", json_string(branch));
	json_object_set_new(params, "patch_base64", json_string(b64));
	free(b64);
	json_object_set_new(params, "patch_level", json_integer(level));
	if (repository || repo)
		json_object_set_new(params, "repository",
				    json_string(repository ? repository : repo));
	if (who || user)
		json_object_set_new(params, "who", json_string(who ? who : user));
	if (comment)
		json_object_set_new(params, "comment", json_string(comment));
	if (builders) {
		json_t *names = json_array();
		const char *p = builders;
		while (*p) {
			size_t n = strcspn(p, ",");
			if (n)
				json_array_append_new(names, json_stringn(p, n));
			p += n;
			if (*p)
				p++;
		}
		json_object_set_new(params, "builderNames", names);
	}

	struct http_client c;
	if (cli_connect(&co, &c) < 0) {
		json_decref(params);
		return CLI_EXIT_FAIL;
	}
	_cleanup_free_ char *sched = NULL;
	if (!scheduler) {
		json_t *list = NULL;
		r = http_get_list(&c, "/api/v2/tryschedulers", "tryschedulers", &list);
		const char *name =
			r < 0 ? NULL : cli_json_str(json_array_get(list, 0), "name", NULL);
		if (name)
			sched = xstrdup(name);
		json_decref(list);
		if (!sched) {
			json_decref(params);
			r = r < 0 ? cli_fail(&c) : cli_error("the master has no try scheduler");
			http_client_release(&c);
			return r;
		}
		scheduler = sched;
	}
	_cleanup_free_ char *esc = http_escape(scheduler);
	_cleanup_free_ char *path = xasprintf("/api/v2/tryschedulers/%s", esc);
	json_t *result = NULL;
	r = http_rpc(&c, path, "try", params, &result);
	json_decref(params);
	if (r < 0) {
		r = cli_error("try with scheduler '%s' failed: %s", scheduler,
			      http_client_error(&c));
	} else {
		printf("buildset %lld: %zu-byte patch on %.12s (%s)\n",
		       cli_json_int(result, "bsid", -1), patch_bytes, base, up);
		r = CLI_EXIT_OK;
	}
	json_decref(result);
	http_client_release(&c);
	return r;
}

const struct cmd cmd_try = {
	.name = "try",
	.usage = "[--master URL] [--builders A,B] [OPTIONS]",
	.summary = "build the local changes against their upstream on the master",
	.run = try_run, /* parses its own argv: --master, a token from the environment */
	.own_help = true,
};
