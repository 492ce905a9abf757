/*
 * `kiln sendchange`: tells the master about one change, like Buildbot's
 * `buildbot sendchange`, by posting a JSON object to the master's
 * /change_hook/base with the API token as a bearer token.  The contrib/
 * VCS hook scripts call it.
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "common/buf.h"
#include "common/xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENDCHANGE_MAX_COMMENTS (1u << 20)

static const char sendchange_options[] =
	"  --master URL      the master (same as --url; HOST:PORT means http://HOST:PORT)\n"
	"  -W, --who WHO     the author, \"Full Name <email>\" or a username (required)\n"
	"  -b, --branch B    branch\n"
	"  -r, --revision R  revision\n"
	"  -R, --repository U  repository URL\n"
	"  -P, --project P   project\n"
	"  -c, --comments C  comments (the commit message)\n"
	"  -F, --logfile F   read the comments from file F ('-' = stdin)\n"
	"  -C, --category C  category\n"
	"  --codebase C      codebase\n"
	"  --revlink URL     link to the revision\n"
	"  --when T          when it happened (seconds since the epoch; default now)\n"
	"  -p, --property K=V  a change property (V as JSON if it parses, else a string);\n"
	"                    repeatable\n"
	"  -s, --vc KIND     git, hg or svn: the kind of name WHO is\n"
	"  FILES...          the files the change touches\n" CLI_COMMON_HELP;

enum { OPT_MASTER = CLI_OPT_FIRST_PRIVATE, OPT_CODEBASE, OPT_REVLINK, OPT_WHEN };

static char *sendchange_read_file(const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	if (!f)
		return NULL;
	struct buf b;
	buf_init(&b, SENDCHANGE_MAX_COMMENTS);
	char chunk[4096];
	size_t n;
	int r = 0;
	while (r == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		r = buf_add(&b, chunk, n);
	bool err = ferror(f) || r < 0;
	if (f != stdin)
		fclose(f);
	if (err) {
		buf_release(&b);
		errno = r < 0 ? E2BIG : EIO;
		return NULL;
	}
	return buf_detach(&b, NULL);
}

static int sendchange_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_OPTIONS,
		{"master", required_argument, NULL, OPT_MASTER},
		{"who", required_argument, NULL, 'W'},
		{"author", required_argument, NULL, 'W'},
		{"branch", required_argument, NULL, 'b'},
		{"revision", required_argument, NULL, 'r'},
		{"repository", required_argument, NULL, 'R'},
		{"project", required_argument, NULL, 'P'},
		{"comments", required_argument, NULL, 'c'},
		{"logfile", required_argument, NULL, 'F'},
		{"category", required_argument, NULL, 'C'},
		{"codebase", required_argument, NULL, OPT_CODEBASE},
		{"revlink", required_argument, NULL, OPT_REVLINK},
		{"when", required_argument, NULL, OPT_WHEN},
		{"property", required_argument, NULL, 'p'},
		{"vc", required_argument, NULL, 's'},
		{0},
	};
	struct cli_common co = {0};
	json_t *change = json_object(), *props = json_object();
	_cleanup_free_ char *master_url = NULL, *logtext = NULL, *body = NULL, *answer = NULL;
	int opt, r = CLI_EXIT_USAGE;

	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":hW:b:r:R:P:c:F:C:p:s:", longopts, NULL)) != -1) {
		if (cli_common_opt(&co, opt, optarg))
			continue;
		const char *key = NULL;
		switch (opt) {
		case 'h':
			r = cli_help(&cmd_sendchange, sendchange_options) == CLI_HELP_SHOWN
				    ? CLI_EXIT_OK
				    : CLI_EXIT_USAGE;
			goto out;
		case OPT_MASTER:
			free(master_url);
			master_url = strstr(optarg, "://") ? xstrdup(optarg)
							   : xasprintf("http://%s", optarg);
			co.url = master_url;
			continue;
		case 'W':
			key = "author";
			break;
		case 'b':
			key = "branch";
			break;
		case 'r':
			key = "revision";
			break;
		case 'R':
			key = "repository";
			break;
		case 'P':
			key = "project";
			break;
		case 'c':
			key = "comments";
			break;
		case 'C':
			key = "category";
			break;
		case OPT_CODEBASE:
			key = "codebase";
			break;
		case OPT_REVLINK:
			key = "revlink";
			break;
		case 's':
			if (strcmp(optarg, "git") && strcmp(optarg, "hg") &&
			    strcmp(optarg, "svn")) {
				r = cli_usage_error(&cmd_sendchange, "--vc must be git, hg or svn");
				goto out;
			}
			key = "src";
			break;
		case 'F':
			free(logtext);
			logtext = sendchange_read_file(optarg);
			if (!logtext) {
				r = cli_error("cannot read '%s': %s", optarg, strerror(errno));
				goto out;
			}
			json_object_set_new(change, "comments", json_string(logtext));
			continue;
		case OPT_WHEN: {
			char *end;
			double t = strtod(optarg, &end);
			if (*end || !isfinite(t) || t < 0) {
				r = cli_usage_error(&cmd_sendchange,
						    "--when takes seconds since the "
						    "epoch (got '%s')",
						    optarg);
				goto out;
			}
			json_object_set_new(change, "when_timestamp", json_real(t));
			continue;
		}
		case 'p': {
			const char *eq = strchr(optarg, '=');
			if (!eq) /* Buildbot's NAME:VALUE */
				eq = strchr(optarg, ':');
			if (!eq || eq == optarg) {
				r = cli_usage_error(&cmd_sendchange, "--property takes NAME=VALUE");
				goto out;
			}
			_cleanup_free_ char *name = xstrndup(optarg, (size_t)(eq - optarg));
			json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
			json_object_set_new(props, name, v ? v : json_string(eq + 1));
			continue;
		}
		default:
			r = cli_bad_option(&cmd_sendchange, opt, argc, argv);
			goto out;
		}
		json_t *s = json_string(optarg);
		if (!s) {
			r = cli_usage_error(&cmd_sendchange, "--%s is not valid UTF-8", key);
			goto out;
		}
		json_object_set_new(change, key, s);
	}
	if (!json_object_get(change, "author")) {
		r = cli_usage_error(&cmd_sendchange, "--who is required");
		goto out;
	}
	json_t *files = json_array();
	for (int i = optind; i < argc; i++) {
		json_t *f = json_string(argv[i]);
		if (!f) {
			json_decref(files);
			r = cli_usage_error(&cmd_sendchange, "file name '%s' is not valid UTF-8",
					    argv[i]);
			goto out;
		}
		json_array_append_new(files, f);
	}
	json_object_set_new(change, "files", files);
	if (json_object_size(props))
		json_object_set(change, "properties", props);

	struct http_client c;
	r = cli_connect(&co, &c);
	if (r != CLI_EXIT_OK)
		goto out;
	body = json_dumps(change, JSON_COMPACT);
	if (http_post_text(&c, "/change_hook/base", "application/json", body, strlen(body),
			   &answer) < 0) {
		r = cli_fail(&c);
	} else {
		printf("change sent: %.*s\n", (int)strcspn(answer, "\r\n"), answer);
		r = CLI_EXIT_OK;
	}
	http_client_release(&c);
out:
	json_decref(change);
	json_decref(props);
	return r;
}

const struct cmd cmd_sendchange = {
	.name = "sendchange",
	.usage = "--who WHO [--branch B] [--revision R] [options] [FILES...]",
	.summary = "tell the master about a change (POST /change_hook/base)",
	.run = sendchange_run, /* parses its own argv: Buildbot's option names */
	.own_help = true,
};
