/*
 * Shared pieces of the client commands: the common --url/--token options
 * and where their defaults come from, usage errors, result names, time and
 * duration formatting, tables, and printing log contents.  Everything here
 * except cli_connect() and cli_build_get() is pure and unit-tested.
 *
 * Exit statuses of every client command: 0 success, 1 failure (master
 * unreachable, API error, build not SUCCESS/WARNINGS), 2 usage error.
 */
#ifndef KILN_CLIENT_CLI_H
#define KILN_CLIENT_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct cmd;
struct http_client;

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };
/* What a command's argument parser returns after printing --help: exit 0. */
#define CLI_HELP_SHOWN (-1)

#define CLI_DEFAULT_URL "http://127.0.0.1:8010"

/* getopt_long values of the options every client command takes. */
enum { CLI_OPT_URL = 0x1000, CLI_OPT_TOKEN, CLI_OPT_FIRST_PRIVATE };
/* clang-format off */
#define CLI_COMMON_OPTIONS                                                                         \
	{"url", required_argument, NULL, CLI_OPT_URL},                                             \
	{"token", required_argument, NULL, CLI_OPT_TOKEN},                                         \
	{"help", no_argument, NULL, 'h'}
#define CLI_COMMON_HELP                                                                            \
	"  --url URL         master URL (default: $KILN_URL, client.conf 'url',\n"                  \
	"                    then " CLI_DEFAULT_URL ")\n"                                            \
	"  --token T         API token, sent as a bearer token (default: $KILN_TOKEN,\n"            \
	"                    then client.conf 'token')\n"                                           \
	"  -h, --help        this help\n"
/* clang-format on */

/* --url and --token as given on the command line; borrowed from argv. */
struct cli_common {
	const char *url;
	const char *token;
};

/*
 * Handles one common option returned by getopt_long: returns 1 when 'opt'
 * was one (stored in *co), 0 otherwise.  --help is left to the caller.
 */
int cli_common_opt(struct cli_common *co, int opt, const char *arg);

/*
 * Resets getopt for a fresh parse (commands may run more than once in one
 * process, as the unit tests do).
 */
void cli_getopt_reset(void);

/*
 * Resolves the master URL and token (flag, then $KILN_URL / $KILN_TOKEN,
 * then the client.conf file, then the default URL / no token) and
 * initialises *ret.  Prints the error and returns CLI_EXIT_USAGE on a bad
 * URL or unreadable config file; CLI_EXIT_OK otherwise.
 */
int cli_connect(const struct cli_common *co, struct http_client *ret);

/* Prints "kiln: <last http error>" to stderr; returns CLI_EXIT_FAIL. */
int cli_fail(const struct http_client *c);
/* Prints "kiln: <message>" to stderr; returns CLI_EXIT_FAIL. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Prints "kiln VERB: <message>" and the usage line to stderr; returns
 * CLI_EXIT_USAGE.
 */
int cli_usage_error(const struct cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints "usage: kiln VERB USAGE", the summary and 'options' to stdout;
 * returns CLI_HELP_SHOWN. */
int cli_help(const struct cmd *cmd, const char *options);
/*
 * Reports getopt_long's complaint 'opt' ('?' unknown option, ':' missing
 * value; optstring must start with ':') about argv[optind - 1].  Returns
 * CLI_EXIT_USAGE.
 */
int cli_bad_option(const struct cmd *cmd, int opt, int argc, char **argv);

/*
 * Reads 'key' from client.conf-format text: lines of `key = value`, '#'
 * comments, blank lines; surrounding blanks and one pair of matching
 * quotes around the value are dropped; the last occurrence wins.  Returns
 * 1 and a new string in *ret_value when found, 0 when not, KILN_EPARSE
 * for a non-blank, non-comment line without '=' (*ret_line gets its
 * number if ret_line is non-NULL).
 */
int cli_conf_get(const char *text, const char *key, char **ret_value, unsigned *ret_line);

/*
 * The client config file: $KILN_CLIENT_CONF, else
 * $XDG_CONFIG_HOME/kiln/client.conf, else $HOME/.config/kiln/client.conf.
 * NULL when none of these variables is set.  Caller frees.
 */
char *cli_conf_path(void);

/*
 * One setting by precedence: 'flag' if non-NULL, else 'env' if non-empty,
 * else 'key' in the file at 'conf_path' (a missing file is not an error),
 * else 'fallback' (may be NULL).  Returns 0 with *ret_value a new string
 * or NULL; a negative code (and a message in *ret_error, caller frees)
 * when the file exists but cannot be read or parsed.
 */
int cli_setting(const char *flag, const char *env, const char *conf_path, const char *key,
		const char *fallback, char **ret_value, char **ret_error);

/*
 * The default owner of a forced build, "USER@HOST" (a new string): sent as
 * the force form's `username`, which Kiln and Buildbot record as the owner
 * ("A build was forced by '...'").  Buildbot's default form accepts only an
 * address whose domain has a dot, so a host without one gets
 * ".localdomain"; a missing or odd user or host becomes "kiln" /
 * "localhost".
 */
char *cli_owner_default(const char *user, const char *host);

/* Result codes (Buildbot numbering). */
enum cli_result {
	CLI_SUCCESS,
	CLI_WARNINGS,
	CLI_FAILURE,
	CLI_SKIPPED,
	CLI_EXCEPTION,
	CLI_RETRY,
	CLI_CANCELLED,
};
/* "SUCCESS" ... "CANCELLED", or "UNKNOWN" for anything else. */
const char *cli_result_name(long long result);
/* 0 for SUCCESS and WARNINGS, 1 for anything else. */
int cli_result_exit(long long result);

/*
 * "0.4s", "12s", "3m05s", "2h07m", "3d04h"; "-" for a negative duration.
 * Writes at most n bytes (always terminated).
 */
void cli_format_duration(double seconds, char *out, size_t n);
/* Local time "YYYY-MM-DD HH:MM:SS", or "-" for a non-positive time. */
void cli_format_time(double epoch, char *out, size_t n);

/* Parses a whole decimal integer in [min, max]; -EINVAL / -ERANGE. */
int cli_parse_int(const char *arg, long long min, long long max, long long *ret);
/* Parses non-negative seconds ("2", "0.5"); -EINVAL. */
int cli_parse_seconds(const char *arg, double *ret);
/* Splits "k=v" (k non-empty) into two new strings; -EINVAL. */
int cli_parse_property(const char *arg, char **ret_key, char **ret_value);
/*
 * A build reference: "N" (a build id) or "BUILDER/N" (the Nth build of a
 * builder).  Sets *ret_builder (new string, or NULL for a bare id) and
 * *ret_number; -EINVAL for anything else.
 */
int cli_parse_build_ref(const char *ref, char **ret_builder, long long *ret_number);

/*
 * Fetches a build by reference (see cli_parse_build_ref()); *ret_build is a
 * new reference.  Prints nothing; on failure the message is in the
 * client's error (KILN_ENOTFOUND: "no build 'REF'").
 */
int cli_build_get(struct http_client *c, const char *ref, json_t **ret_build);

/* JSON member helpers: the value, or 'def' when missing or mistyped. */
long long cli_json_int(const json_t *o, const char *key, long long def);
double cli_json_num(const json_t *o, const char *key, double def);
const char *cli_json_str(const json_t *o, const char *key, const char *def);
bool cli_json_bool(const json_t *o, const char *key, bool def);

/* True when 'f' is a terminal that takes colours ($NO_COLOR, TERM=dumb). */
bool cli_is_color_tty(FILE *f);

/* Sleeps ms milliseconds (restarting after signals). */
void cli_sleep_ms(unsigned ms);

/*
 * A text table: columns padded to their widest cell, the last column not
 * padded, two spaces between columns.  Cells are copied.
 */
struct cli_table {
	size_t ncols;
	size_t nrows;
	char **cells; /* owned: nrows * ncols strings */
	size_t cells_alloc;
	size_t *width; /* owned: per column */
};
void cli_table_init(struct cli_table *t, size_t ncols);
/* Appends a row of exactly t->ncols cells (NULL prints as ""). */
void cli_table_add(struct cli_table *t, const char *const *row);
void cli_table_print(const struct cli_table *t, FILE *f);
void cli_table_release(struct cli_table *t);

/*
 * Writes log content (lines, each ending in '\n'; a last unterminated line
 * is completed) to f.  For type 's' (stdio) each line's first character is
 * its stream ('o' stdout, 'e' stderr, 'h' header) and is stripped; with
 * 'color', header lines are dimmed and stderr lines red.  Returns the
 * number of lines written.
 */
size_t cli_log_write(FILE *f, const char *content, size_t len, char type, bool color);

#endif
