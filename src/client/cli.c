/*
 * Shared helpers of the client commands (see cli.h): option defaults from
 * flags, environment and client.conf, messages and exit statuses, result
 * names, time formatting, tables and log printing.
 */
#include "client/cli.h"

#include "client/cmd.h"
#include "client/http.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cli_common_opt(struct cli_common *co, int opt, const char *arg)
{
	switch (opt) {
	case CLI_OPT_URL:
		co->url = arg;
		return 1;
	case CLI_OPT_TOKEN:
		co->token = arg;
		return 1;
	default:
		return 0;
	}
}

void cli_getopt_reset(void)
{
	optind = 0; /* glibc: 0 also resets its internal state */
	opterr = 0; /* we word the messages ourselves */
}

int cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("kiln: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_EXIT_FAIL;
}

int cli_fail(const struct http_client *c)
{
	return cli_error("%s", http_client_error(c));
}

int cli_usage_error(const struct cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "kiln %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: kiln %s %s\n", cmd->name, cmd->usage);
	return CLI_EXIT_USAGE;
}

int cli_help(const struct cmd *cmd, const char *options)
{
	printf("usage: kiln %s %s\n%s\n\noptions:\n%s", cmd->name, cmd->usage, cmd->summary,
	       options);
	return CLI_HELP_SHOWN;
}

int cli_bad_option(const struct cmd *cmd, int opt, int argc, char **argv)
{
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : NULL;
	bool is_long = arg && !strncmp(arg, "--", 2);
	int len = is_long ? (int)strcspn(arg, "=") : 0;

	if (opt == ':') {
		if (is_long)
			return cli_usage_error(cmd, "option '%.*s' needs a value", len, arg);
		return cli_usage_error(cmd, "option '-%c' needs a value", optopt);
	}
	if (is_long)
		return cli_usage_error(cmd, "unknown option '%.*s'", len, arg);
	if (optopt > 0 && optopt < 0x100)
		return cli_usage_error(cmd, "unknown option '-%c'", optopt);
	return cli_usage_error(cmd, "unknown option '%s'", arg ? arg : "?");
}

/* ---- settings: flag, environment, client.conf ---------------------------------------- */

static char *cli_trim(char *s, char *end)
{
	while (s < end && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

int cli_conf_get(const char *text, const char *key, char **ret_value, unsigned *ret_line)
{
	_cleanup_free_ char *copy = xstrdup(text);
	char *found = NULL, *line = copy;
	unsigned lineno = 0;

	while (line) {
		char *nl = strchr(line, '\n');
		char *end = nl ? nl : line + strlen(line);
		char *eq, *k, *v;
		size_t vlen;

		lineno++;
		if (nl)
			*nl = '\0';
		k = cli_trim(line, end);
		line = nl ? nl + 1 : NULL;
		if (!*k || *k == '#' || *k == ';')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			free(found);
			if (ret_line)
				*ret_line = lineno;
			return KILN_EPARSE;
		}
		v = cli_trim(eq + 1, eq + 1 + strlen(eq + 1));
		k = cli_trim(k, eq);
		if (strcmp(k, key))
			continue;
		vlen = strlen(v);
		if (vlen >= 2 && (v[0] == '"' || v[0] == '\'') && v[vlen - 1] == v[0]) {
			v[vlen - 1] = '\0';
			v++;
		}
		free(found);
		found = xstrdup(v);
	}
	if (!found)
		return 0;
	*ret_value = found;
	return 1;
}

char *cli_conf_path(void)
{
	const char *p = getenv("KILN_CLIENT_CONF");

	if (p && *p)
		return xstrdup(p);
	p = getenv("XDG_CONFIG_HOME");
	if (p && *p == '/')
		return xasprintf("%s/kiln/client.conf", p);
	p = getenv("HOME");
	if (p && *p)
		return xasprintf("%s/.config/kiln/client.conf", p);
	return NULL;
}

/* Reads a whole small file; 0 with *ret_text, -ENOENT, or another error. */
static int cli_read_small_file(const char *path, char **ret_text)
{
	struct buf b;
	char chunk[4096];
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf_init(&b, KILN_MAX_CLIENT_CONF);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		r = buf_add(&b, chunk, (size_t)n);
		if (r < 0)
			break;
	}
	close(fd);
	if (r < 0) {
		buf_release(&b);
		return r;
	}
	*ret_text = buf_detach(&b, NULL);
	return 0;
}

int cli_setting(const char *flag, const char *env, const char *conf_path, const char *key,
		const char *fallback, char **ret_value, char **ret_error)
{
	_cleanup_free_ char *text = NULL;
	char *value = NULL;
	unsigned line = 0;
	int r;

	if (flag) {
		*ret_value = xstrdup(flag);
		return 0;
	}
	if (env && *env) {
		*ret_value = xstrdup(env);
		return 0;
	}
	if (conf_path) {
		r = cli_read_small_file(conf_path, &text);
		if (r < 0 && r != -ENOENT && r != -ENOTDIR) {
			*ret_error = xasprintf("cannot read '%s': %s", conf_path,
					       r == -E2BIG ? "file too large" : err_str(r));
			return r;
		}
		if (r == 0) {
			r = cli_conf_get(text, key, &value, &line);
			if (r < 0) {
				*ret_error =
					xasprintf("%s:%u: expected 'key = value'", conf_path, line);
				return r;
			}
			if (r > 0) {
				*ret_value = value;
				return 0;
			}
		}
	}
	*ret_value = xstrdup_or_null(fallback);
	return 0;
}

int cli_connect(const struct cli_common *co, struct http_client *ret)
{
	_cleanup_free_ char *conf = cli_conf_path(), *url = NULL, *token = NULL, *error = NULL;
	int r;

	r = cli_setting(co->url, getenv("KILN_URL"), conf, "url", CLI_DEFAULT_URL, &url, &error);
	if (r >= 0)
		r = cli_setting(co->token, getenv("KILN_TOKEN"), conf, "token", NULL, &token,
				&error);
	if (r < 0) {
		cli_error("%s", error);
		return CLI_EXIT_USAGE;
	}
	r = http_client_init(ret, url, token);
	if (r < 0) {
		cli_error("%s", http_client_error(ret));
		http_client_release(ret);
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/* ---- results, times, numbers -------------------------------------------------------- */

static const char *const cli_result_names[] = {
	[CLI_SUCCESS] = "SUCCESS",     [CLI_WARNINGS] = "WARNINGS",   [CLI_FAILURE] = "FAILURE",
	[CLI_SKIPPED] = "SKIPPED",     [CLI_EXCEPTION] = "EXCEPTION", [CLI_RETRY] = "RETRY",
	[CLI_CANCELLED] = "CANCELLED",
};

const char *cli_result_name(long long result)
{
	if (result < 0 || result >= (long long)ARRAY_SIZE(cli_result_names))
		return "UNKNOWN";
	return cli_result_names[result];
}

int cli_result_exit(long long result)
{
	return result == CLI_SUCCESS || result == CLI_WARNINGS ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

void cli_format_duration(double seconds, char *out, size_t n)
{
	long long s;

	if (!(seconds >= 0) || !isfinite(seconds)) {
		snprintf(out, n, "-");
		return;
	}
	if (seconds < 10 && seconds != floor(seconds)) {
		snprintf(out, n, "%.1fs", floor(seconds * 10) / 10);
		return;
	}
	s = (long long)seconds;
	if (s < 60)
		snprintf(out, n, "%llds", s);
	else if (s < 3600)
		snprintf(out, n, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, n, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, n, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

void cli_format_time(double epoch, char *out, size_t n)
{
	struct tm tm;
	time_t t = (time_t)epoch;

	if (!(epoch > 0) || !localtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(out, n, "-");
}

int cli_parse_int(const char *arg, long long min, long long max, long long *ret)
{
	long long v;
	int r;

	/* strtoll accepts leading blanks and '+': a strict CLI does not */
	if (!arg ||
	    !(isdigit((unsigned char)arg[0]) || (arg[0] == '-' && isdigit((unsigned char)arg[1]))))
		return -EINVAL;
	r = str_to_i64(arg, &v);
	if (r < 0)
		return r;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int cli_parse_seconds(const char *arg, double *ret)
{
	char *end;
	double v;

	if (!arg || !(isdigit((unsigned char)arg[0]) || arg[0] == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(arg, &end);
	if (errno || *end || !isfinite(v) || v < 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

int cli_parse_property(const char *arg, char **ret_key, char **ret_value)
{
	const char *eq = arg ? strchr(arg, '=') : NULL;

	if (!eq || eq == arg)
		return -EINVAL;
	*ret_key = xstrndup(arg, (size_t)(eq - arg));
	*ret_value = xstrdup(eq + 1);
	return 0;
}

int cli_parse_build_ref(const char *ref, char **ret_builder, long long *ret_number)
{
	const char *slash = ref ? strrchr(ref, '/') : NULL;
	long long n;

	if (!ref)
		return -EINVAL;
	if (!slash) {
		if (cli_parse_int(ref, 1, INT64_MAX, &n) < 0)
			return -EINVAL;
		*ret_builder = NULL;
		*ret_number = n;
		return 0;
	}
	if (slash == ref || cli_parse_int(slash + 1, 0, INT64_MAX, &n) < 0)
		return -EINVAL;
	*ret_builder = xstrndup(ref, (size_t)(slash - ref));
	*ret_number = n;
	return 0;
}

/* The first element of a REST answer's list 'key', as a new reference, or NULL. */
static json_t *cli_first(json_t *answer, const char *key)
{
	json_t *o = json_array_get(json_object_get(answer, key), 0);

	return json_is_object(o) ? json_incref(o) : NULL;
}

int cli_build_get(struct http_client *c, const char *ref, json_t **ret_build)
{
	_cleanup_free_ char *builder = NULL, *esc = NULL;
	json_t *j = NULL, *b;
	long long number, builderid;
	int r;

	if (cli_parse_build_ref(ref, &builder, &number) < 0)
		return -EINVAL;
	if (!builder) {
		r = http_getf_json(c, &j, "/api/v2/builds/%lld", number);
	} else {
		esc = http_escape(builder);
		r = http_getf_json(c, &j, "/api/v2/builders?name=%s", esc);
		if (r < 0)
			return r;
		b = cli_first(j, "builders");
		json_decref(j);
		j = NULL;
		builderid = cli_json_int(b, "builderid", -1);
		json_decref(b);
		if (builderid < 0)
			goto notfound;
		r = http_getf_json(c, &j, "/api/v2/builds?builderid=%lld&number=%lld", builderid,
				   number);
	}
	if (r == KILN_ENOTFOUND)
		goto notfound;
	if (r < 0)
		return r;
	b = cli_first(j, "builds");
	json_decref(j);
	if (!b)
		goto notfound;
	*ret_build = b;
	return 0;
notfound:
	http_client_set_error(c, "no build '%s'", ref);
	return KILN_ENOTFOUND;
}

/* ---- JSON ---------------------------------------------------------------------------- */

long long cli_json_int(const json_t *o, const char *key, long long def)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return def;
}

double cli_json_num(const json_t *o, const char *key, double def)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : def;
}

const char *cli_json_str(const json_t *o, const char *key, const char *def)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : def;
}

bool cli_json_bool(const json_t *o, const char *key, bool def)
{
	json_t *v = json_object_get(o, key);

	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	return def;
}

/* ---- terminal ------------------------------------------------------------------------ */

bool cli_is_color_tty(FILE *f)
{
	const char *term = getenv("TERM");
	const char *no = getenv("NO_COLOR");

	if (no && *no)
		return false;
	if (!term || !strcmp(term, "dumb"))
		return false;
	return isatty(fileno(f));
}

void cli_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- owner --------------------------------------------------------------------------- */

char *cli_owner_default(const char *user, const char *host)
{
	if (!user || !*user || strpbrk(user, " \t\r\n<>@"))
		user = "kiln";
	if (!host || !*host || strpbrk(host, " \t\r\n<>@"))
		host = "localhost";
	/* Buildbot's default force form wants an address whose domain has a dot */
	return xasprintf("%s@%s%s", user, host, strchr(host, '.') ? "" : ".localdomain");
}

/* ---- tables -------------------------------------------------------------------------- */

void cli_table_init(struct cli_table *t, size_t ncols)
{
	*t = (struct cli_table){.ncols = ncols, .width = xcalloc(ncols, sizeof(size_t))};
}

void cli_table_add(struct cli_table *t, const char *const *row)
{
	ARRAY_GROW(t->cells, xmul(t->nrows + 1, t->ncols), t->cells_alloc);
	for (size_t i = 0; i < t->ncols; i++) {
		char *cell = xstrdup(row[i] ? row[i] : "");
		/* a table cell is one line: flatten control characters */
		for (char *p = cell; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = ' ';
		size_t w = strlen(cell);
		if (w > t->width[i])
			t->width[i] = w;
		t->cells[t->nrows * t->ncols + i] = cell;
	}
	t->nrows++;
}

void cli_table_print(const struct cli_table *t, FILE *f)
{
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *cell = t->cells[r * t->ncols + i];
			if (i + 1 == t->ncols)
				fprintf(f, "%s\n", cell);
			else
				fprintf(f, "%-*s  ", (int)t->width[i], cell);
		}
	}
}

void cli_table_release(struct cli_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	*t = (struct cli_table){0};
}

/* ---- logs ---------------------------------------------------------------------------- */

size_t cli_log_write(FILE *f, const char *content, size_t len, char type, bool color)
{
	const char *p = content, *end = content + len;
	size_t lines = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		const char *pre = NULL;

		if (type == 's' && eol > p) {
			char stream = *p++;
			if (color && stream == 'h')
				pre = "\033[2m";
			else if (color && stream == 'e')
				pre = "\033[31m";
		}
		if (pre)
			fputs(pre, f);
		fwrite(p, 1, (size_t)(eol - p), f);
		if (pre)
			fputs("\033[0m", f);
		fputc('\n', f);
		lines++;
		p = nl ? nl + 1 : end;
	}
	return lines;
}
