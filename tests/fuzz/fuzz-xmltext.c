/*
 * libFuzzer target for the XML text of badges and feeds (src/master/feeds.c,
 * src/master/badges.c): feeds_add_xml() over the input, and a badge whose
 * left text is the input.  Invariants: the escaped text holds no '<', '>',
 * '"', '\'' nor a C0 control but tab, LF and CR, every '&' starts an
 * entity, and it is valid UTF-8; badge_color_valid() accepts only hex.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "master/badges.h"
#include "master/feeds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_utf8(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t len = p[i] < 0x80             ? 1
			     : (p[i] & 0xe0) == 0xc0 ? 2
			     : (p[i] & 0xf0) == 0xe0 ? 3
			     : (p[i] & 0xf8) == 0xf0 ? 4
						     : 0;
		if (!len || i + len > n)
			abort();
		for (size_t k = 1; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				abort();
		i += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf b;
	buf_init(&b, size * 6 + 16);
	if (feeds_add_xml(&b, (const char *)data, size) < 0)
		abort(); /* 6 bytes per input byte always suffice */
	const unsigned char *p = (const unsigned char *)b.ptr;
	for (size_t i = 0; i < b.len; i++) {
		unsigned char c = p[i];
		if (c == '<' || c == '>' || c == '"' || c == '\'' || c == 0x7f ||
		    (c < 0x20 && c != '\t' && c != '\n' && c != '\r'))
			abort();
		if (c == '&' && !memchr(p + i, ';', b.len - i < 7 ? b.len - i : 7))
			abort();
	}
	fuzz_check_utf8(p, b.len);
	buf_release(&b);

	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = 0;
	if (badge_color_valid(s) &&
	    strspn(s + (*s == '#'), "0123456789abcdefABCDEF") != strlen(s + (*s == '#')))
		abort();
	(void)badge_text_width(s);
	buf_init(&b, strlen(s) * 6 * 4 + 4096);
	if (badge_svg_render(&b, s, NULL, "success", BADGE_FLAT) < 0)
		abort();
	buf_release(&b);
	free(s);
	return 0;
}
