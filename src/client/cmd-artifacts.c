/*
 * `kiln artifacts BUILD` lists the files a build's upload steps stored
 * (GET /api/v2/builds/N/artifacts, step names from its steps), and
 * `kiln artifact ID` downloads one (GET /api/v2/artifacts/N/download),
 * streamed to a file or stdout, resumed with a Range when asked, and
 * checked against the size and sha256 the master recorded.
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "common/err.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- kiln artifacts BUILD ---------------------------------------------------------- */

static const char artifacts_options[] =
	"  --json            print the list as JSON (each artifact with 'step' and 'url')\n";

enum { ARTIFACTS_OPT_JSON = CLI_OPT_FIRST_PRIVATE };

struct artifacts_args {
	const char *build; /* borrowed: argv */
	bool json;
};

static const struct option artifacts_longopts[] = {
	{"json", no_argument, NULL, ARTIFACTS_OPT_JSON},
	{0},
};

static int artifacts_option(void *state, int opt, const char *arg)
{
	struct artifacts_args *a = state;
	(void)arg;
	(void)opt; /* the only option: --json */
	a->json = true;
	return CLI_EXIT_OK;
}

static int artifacts_args(void *state, int argc, char **argv)
{
	struct artifacts_args *a = state;
	char *builder;
	long long number;

	if (argc == 0)
		return cli_usage_error(&cmd_artifacts, "missing BUILD");
	if (argc > 1)
		return cli_usage_error(&cmd_artifacts, "unexpected argument '%s'", argv[1]);
	a->build = argv[0];
	if (cli_parse_build_ref(a->build, &builder, &number) < 0)
		return cli_usage_error(&cmd_artifacts,
				       "bad build '%s': expected an id or BUILDER/NUMBER",
				       a->build);
	free(builder);
	return CLI_EXIT_OK;
}

/* The name of step 'id' among steps, or NULL. */
static const char *artifacts_step_name(json_t *steps, long long id)
{
	json_t *s;
	size_t i;

	json_array_foreach(steps, i, s)
	{
		if (cli_json_int(s, "stepid", -1) == id)
			return cli_json_str(s, "name", NULL);
	}
	return NULL;
}

static int artifacts_exec(void *state, struct http_client *c)
{
	const struct artifacts_args *a = state;
	json_t *build = NULL, *list = NULL, *steps = NULL, *o;
	struct cli_table t;
	size_t i;
	int r;

	cli_table_init(&t, 6);
	r = cli_build_get(c, a->build, &build);
	long long buildid = r < 0 ? -1 : cli_json_int(build, "buildid", -1);
	if (r >= 0)
		r = http_getf_json(c, &list, "/api/v2/builds/%lld/artifacts", buildid);
	if (r >= 0)
		r = http_getf_json(c, &steps, "/api/v2/builds/%lld/steps", buildid);
	if (r < 0) {
		r = cli_fail(c);
		goto out;
	}
	json_t *arts = json_object_get(list, "artifacts");
	json_t *st = json_object_get(steps, "steps");
	if (!json_is_array(arts) || !json_is_array(st)) {
		r = cli_error("the master's answer has no 'artifacts' or 'steps' list");
		goto out;
	}
	/* each artifact with its step's name and its download URL */
	json_array_foreach(arts, i, o)
	{
		long long id = cli_json_int(o, "artifactid", -1);
		const char *step = artifacts_step_name(st, cli_json_int(o, "stepid", -1));
		json_object_set_new(o, "step", step ? json_string(step) : json_null());
		char *url = xasprintf("%s/api/v2/artifacts/%lld/download", c->base, id);
		json_object_set_new(o, "url", json_string(url));
		free(url);
	}
	if (a->json) {
		char *text = json_dumps(arts, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (!text) {
			r = cli_error("cannot encode the list");
			goto out;
		}
		puts(text);
		free(text);
		r = CLI_EXIT_OK;
		goto out;
	}
	if (json_array_size(arts) == 0) {
		fprintf(stderr, "build %lld has no artifacts\n", buildid);
		r = CLI_EXIT_OK;
		goto out;
	}
	cli_table_add(&t, (const char *const[]){"ID", "STEP", "NAME", "SIZE", "SHA256", "URL"});
	json_array_foreach(arts, i, o)
	{
		char id[24], size[24];
		snprintf(id, sizeof(id), "%lld", cli_json_int(o, "artifactid", -1));
		snprintf(size, sizeof(size), "%lld", cli_json_int(o, "size", -1));
		const char *sha = cli_json_str(o, "sha256", "");
		cli_table_add(&t,
			      (const char *const[]){id, cli_json_str(o, "step", "-"),
						    cli_json_str(o, "name", "?"), size,
						    *sha ? sha : "-", cli_json_str(o, "url", "")});
	}
	cli_table_print(&t, stdout);
	r = CLI_EXIT_OK;
out:
	cli_table_release(&t);
	json_decref(steps);
	json_decref(list);
	json_decref(build);
	return r;
}

const struct cmd cmd_artifacts = {
	.name = "artifacts",
	.usage = "BUILD [--json]",
	.summary = "list the files a build's upload steps stored (BUILD: a build id or "
		   "BUILDER/NUMBER)",
	.flags = CMD_MASTER,
	.optstring = "",
	.options = artifacts_longopts,
	.options_help = artifacts_options,
	.state_size = sizeof(struct artifacts_args),
	.option = artifacts_option,
	.args = artifacts_args,
	.exec = artifacts_exec,
};

/* ---- kiln artifact ID ---------------------------------------------------------------- */

static const char artifact_options[] =
	"  -o, --output FILE write to FILE (default: stdout, when it is not a terminal)\n"
	"  -c, --continue    FILE holds the start of the artifact: fetch only the rest\n"
	"                    (an HTTP Range); the whole is checked against its sha256\n";

struct artifact_args {
	long long id;
	const char *output; /* borrowed: argv; NULL for stdout */
	bool resume;
};

/* The download's sink: every byte written to fd and hashed. */
struct artifact_dl {
	int fd;
	crypto_hash_sha256_state sha;
	long long from;  /* bytes already in the file (--continue) */
	long long bytes; /* in the file now */
	bool started;
	int werr; /* the sink's own failure (a write), which stopped the transfer */
};

static int artifact_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int artifact_sink(void *ud, long status, const void *data, size_t len)
{
	struct artifact_dl *d = ud;
	if (!d->started) {
		d->started = true;
		if (status == 200 && d->from > 0) {
			/* the master sent the whole file: start it again */
			if (ftruncate(d->fd, 0) < 0 || lseek(d->fd, 0, SEEK_SET) < 0)
				return d->werr = -errno;
			crypto_hash_sha256_init(&d->sha);
			d->bytes = 0;
		}
	}
	int r = artifact_write_all(d->fd, data, len);
	if (r < 0)
		return d->werr = r;
	crypto_hash_sha256_update(&d->sha, data, len);
	d->bytes += (long long)len;
	return 0;
}

/* Hashes the first n bytes of fd into d (a resumed download's start). */
static int artifact_hash_prefix(struct artifact_dl *d, long long n)
{
	char chunk[65536];
	long long off = 0;
	while (off < n) {
		size_t want =
			n - off < (long long)sizeof(chunk) ? (size_t)(n - off) : sizeof(chunk);
		ssize_t got = pread(d->fd, chunk, want, off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		crypto_hash_sha256_update(&d->sha, (unsigned char *)chunk, (size_t)got);
		off += got;
	}
	return 0;
}

static const struct option artifact_longopts[] = {
	{"output", required_argument, NULL, 'o'},
	{"continue", no_argument, NULL, 'c'},
	{0},
};

static int artifact_option(void *state, int opt, const char *arg)
{
	struct artifact_args *a = state;
	if (opt == 'o')
		a->output = arg;
	else /* 'c' */
		a->resume = true;
	return CLI_EXIT_OK;
}

static int artifact_args(void *state, int argc, char **argv)
{
	struct artifact_args *a = state;
	if (argc == 0)
		return cli_usage_error(&cmd_artifact, "missing ID");
	if (argc > 1)
		return cli_usage_error(&cmd_artifact, "unexpected argument '%s'", argv[1]);
	if (cli_parse_int(argv[0], 1, INT64_MAX, &a->id) < 0)
		return cli_usage_error(&cmd_artifact, "bad artifact id '%s'", argv[0]);
	if (a->resume && !a->output)
		return cli_usage_error(&cmd_artifact, "--continue needs --output FILE");
	return CLI_EXIT_OK;
}

static int artifact_exec(void *state, struct http_client *c)
{
	const struct artifact_args *a = state;
	struct artifact_dl d = {.fd = -1};
	json_t *j = NULL;
	int r;

	if (!a->output && isatty(STDOUT_FILENO))
		return cli_error("not writing an artifact to a terminal: use --output FILE or "
				 "redirect stdout");
	if (sodium_init() < 0)
		return cli_error("cannot initialise libsodium");
	r = http_getf_json(c, &j, "/api/v2/artifacts/%lld", a->id);
	if (r == KILN_ENOTFOUND) {
		json_decref(j);
		return cli_error("no artifact %lld (deleted, or never stored)", a->id);
	}
	if (r < 0)
		return cli_fail(c);
	json_t *art = json_array_get(json_object_get(j, "artifacts"), 0);
	long long size = cli_json_int(art, "size", -1);
	char sha[65];
	snprintf(sha, sizeof(sha), "%s", cli_json_str(art, "sha256", ""));
	json_decref(j);
	if (size < 0 || strlen(sha) != 64)
		return cli_error("the master's answer for artifact %lld has no size or sha256",
				 a->id);

	crypto_hash_sha256_init(&d.sha);
	if (a->output) {
		int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (a->resume ? 0 : O_TRUNC);
		d.fd = open(a->output, a->resume ? (flags & ~O_WRONLY) | O_RDWR : flags, 0644);
		if (d.fd < 0)
			return cli_error("cannot open '%s': %s", a->output, strerror(errno));
		struct stat sb;
		if (a->resume) {
			if (fstat(d.fd, &sb) < 0) {
				r = cli_error("cannot stat '%s': %s", a->output, strerror(errno));
				goto out;
			}
			d.from = S_ISREG(sb.st_mode) ? (long long)sb.st_size : 0;
			if (d.from > size) {
				r = cli_error("'%s' has %lld bytes, more than artifact %lld's %lld",
					      a->output, d.from, a->id, size);
				goto out;
			}
			r = artifact_hash_prefix(&d, d.from);
			if (r < 0 || lseek(d.fd, d.from, SEEK_SET) < 0) {
				r = cli_error("cannot read '%s': %s", a->output,
					      err_str(r < 0 ? r : -errno));
				goto out;
			}
			d.bytes = d.from;
		}
	} else {
		d.fd = STDOUT_FILENO;
	}

	if (d.from < size || size == 0) {
		char *path = xasprintf("/api/v2/artifacts/%lld/download", a->id);
		r = http_get_stream(c, path, d.from, artifact_sink, &d);
		free(path);
		if (r == KILN_ENOTFOUND) {
			r = cli_error("no artifact %lld (deleted, or never stored)", a->id);
			goto out;
		}
		if (d.werr < 0) {
			r = cli_error("cannot write '%s': %s", a->output ? a->output : "stdout",
				      err_str(d.werr));
			goto out;
		}
		if (r < 0) {
			r = cli_fail(c);
			goto out;
		}
	}
	unsigned char digest[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	crypto_hash_sha256_final(&d.sha, digest);
	sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
	if (d.bytes != size || strcmp(hex, sha)) {
		r = cli_error("artifact %lld: got %lld bytes with sha256 %s, expected %lld bytes "
			      "with sha256 %s",
			      a->id, d.bytes, hex, size, sha);
		goto out;
	}
	r = CLI_EXIT_OK;
out:
	if (d.fd >= 0 && d.fd != STDOUT_FILENO && close(d.fd) < 0 && r == CLI_EXIT_OK)
		r = cli_error("cannot write '%s': %s", a->output, strerror(errno));
	return r;
}

const struct cmd cmd_artifact = {
	.name = "artifact",
	.usage = "ID [--output FILE [--continue]]",
	.summary = "download an artifact (ID from 'kiln artifacts'), checking its size and sha256",
	.flags = CMD_MASTER,
	.optstring = "o:c",
	.options = artifact_longopts,
	.options_help = artifact_options,
	.state_size = sizeof(struct artifact_args),
	.option = artifact_option,
	.args = artifact_args,
	.exec = artifact_exec,
};
