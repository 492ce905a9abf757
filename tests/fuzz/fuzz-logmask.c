/*
 * libFuzzer target for the secret masker (src/master/logmask.c).  The
 * input's first line lists secrets ('\t'-separated, "\\n" for a newline
 * inside one), the rest is output, cut into pieces and streams by the
 * bytes 0x01 (cut), 0x02 (switch to stderr), 0x03 (switch to stdout).  Each
 * secret's value as one run of bytes in one stream must never reach what is
 * stored, and the output must not depend on where the pieces were cut: the
 * same text fed whole gives the same stored log.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "master/logmask.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_sink {
	struct buf out[3];
};

static void fuzz_emit(void *ud, char stream, const char *text, size_t len)
{
	struct fuzz_sink *k = ud;
	struct buf *b = &k->out[stream == 'o' ? 0 : stream == 'e' ? 1 : 2];
	if (!len || buf_add(b, text, len) < 0)
		abort();
	if (text[len - 1] != '\n' && buf_addch(b, '\n') < 0)
		abort();
}

static void fuzz_run(char **secrets, size_t nsec, const uint8_t *t, size_t n, struct fuzz_sink *k)
{
	for (int i = 0; i < 3; i++)
		buf_init(&k->out[i], 1u << 22);
	struct logmask *m = logmask_new((const char *const *)secrets, nsec, fuzz_emit, k);
	char stream = 'o';
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		bool ctl = i < n && t[i] >= 1 && t[i] <= 3;
		if (i < n && !ctl)
			continue;
		if (i > start)
			logmask_feed(m, stream, (const char *)t + start, i - start);
		start = i + 1;
		if (i < n && t[i] == 2)
			stream = 'e';
		if (i < n && t[i] == 3)
			stream = 'o';
	}
	logmask_flush(m);
	logmask_free(m);
}

/* The text less the cut bytes (0x01), fed in as few pieces as possible. */
static size_t fuzz_uncut(const uint8_t *t, size_t n, uint8_t *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++)
		if (t[i] != 1)
			out[o++] = t[i];
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	const uint8_t *nl = memchr(data, '\n', size);
	if (!nl)
		return 0;
	/* the secrets */
	char *list = malloc((size_t)(nl - data) + 1), **secrets = NULL;
	size_t nsec = 0, ln = 0;
	for (const uint8_t *p = data; p < nl; p++) {
		if (*p == '\\' && p + 1 < nl && p[1] == 'n') {
			list[ln++] = '\n';
			p++;
		} else if (*p) {
			list[ln++] = (char)*p;
		}
	}
	list[ln] = '\0';
	for (char *s = list; s && nsec < 8;) {
		char *tab = strchr(s, '\t');
		if (tab)
			*tab = '\0';
		secrets = realloc(secrets, (nsec + 1) * sizeof(*secrets));
		secrets[nsec++] = s;
		s = tab ? tab + 1 : NULL;
	}
	const uint8_t *t = nl + 1;
	size_t n = size - (size_t)(t - data);

	struct fuzz_sink cut, whole;
	fuzz_run(secrets, nsec, t, n, &cut);
	uint8_t *u = malloc(n + 1);
	size_t un = fuzz_uncut(t, n, u);
	fuzz_run(secrets, nsec, u, un, &whole);
	for (int i = 0; i < 3; i++) {
		if (cut.out[i].len != whole.out[i].len ||
		    memcmp(cut.out[i].ptr, whole.out[i].ptr, cut.out[i].len))
			abort(); /* the output depends on the cuts */
		/* no secret of LOGMASK_MIN_SECRET bytes or more, without line
		 * terminators (those are kept), survives */
		for (size_t s = 0; s < nsec; s++) {
			size_t sl = strlen(secrets[s]);
			if (sl < LOGMASK_MIN_SECRET || strpbrk(secrets[s], "\r\n<>") ||
			    strstr(LOGMASK_MARK, secrets[s]))
				continue; /* or the mark itself may spell it */
			if (memmem(cut.out[i].ptr, cut.out[i].len, secrets[s], sl))
				abort();
		}
		buf_release(&cut.out[i]);
		buf_release(&whole.out[i]);
	}
	free(u);
	free(secrets);
	free(list);
	return 0;
}
