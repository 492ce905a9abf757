/*
 * JUnit XML with libxml2's SAX2 push parser: the bytes go in as they come,
 * no tree is built.  Reads testsuites/testsuite/testcase with failure,
 * error and skipped children and their time, file and line attributes, in
 * the variants pytest, CTest (--output-junit), GoogleTest and Maven
 * Surefire write; system-out/system-err and properties are skipped.  A
 * DOCTYPE is refused (no DTD is loaded, no entity declared or expanded,
 * nothing read from the network or the disk); nesting and attribute sizes
 * are capped.
 */
#include "master/testreport-int.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "db/db.h"

struct junit_state {
	struct testreport *tr;
	xmlParserCtxtPtr ctxt;
	int depth;
	bool seen_root;
	bool in_case;
	int case_depth;
	int text_depth; /* depth of the failure/error/skipped element collecting text, 0 none */
	bool text_sep;  /* a newline goes before its first text */
	struct buf name, file;
	int result;
	int64_t duration_ms, line;
	struct testreport_text msg;
	char *stop_msg; /* owned: why a callback stopped the parser */
	int stop_r;
	/* the bytes go to libxml2 only once known to be UTF-8: a sequence cut
	 * by the chunking waits here, so where the input is cut never changes
	 * the outcome (libxml2's own conversion errors do depend on it) */
	unsigned char carry[4];
	size_t ncarry;
	uint64_t offset; /* of carry[0] in the report */
};

static bool testreport_junit_is(const xmlChar *name, const char *want)
{
	return strcmp((const char *)name, want) == 0;
}

static void testreport_junit_stop(struct junit_state *st, int r, char *msg)
{
	if (st->stop_r >= 0) {
		st->stop_r = r;
		st->stop_msg = msg;
	} else {
		free(msg);
	}
	xmlStopParser(st->ctxt);
}

/* The value of attribute name (SAX2's 5-pointer layout: localname, prefix,
 * URI, value, end); NULL if absent. */
static const xmlChar *testreport_junit_attr(int nattr, const xmlChar **attrs, const char *name,
					    size_t *ret_len)
{
	for (int i = 0; i < nattr; i++) {
		const xmlChar **a = attrs + 5 * i;
		if (strcmp((const char *)a[0], name) == 0) {
			*ret_len = (size_t)(a[4] - a[3]);
			return a[3];
		}
	}
	return NULL;
}

static void testreport_junit_case_start(struct junit_state *st, int nattr, const xmlChar **attrs)
{
	size_t nl = 0, cl = 0, n;
	const xmlChar *name = testreport_junit_attr(nattr, attrs, "name", &nl);
	const xmlChar *cls = testreport_junit_attr(nattr, attrs, "classname", &cl);
	buf_reset(&st->name);
	buf_reset(&st->file);
	testreport_text_reset(&st->msg);
	int bad = 0;
	/* classname.name, unless CTest's classname repeats the name */
	if (cls && cl && !(name && nl == cl && memcmp(name, cls, cl) == 0)) {
		bad |= buf_add(&st->name, cls,
			       cl <= KILN_TESTREPORT_MAX_NAME ? cl : KILN_TESTREPORT_MAX_NAME + 1);
		bad |= buf_addch(&st->name, '.');
	}
	if (name)
		bad |= buf_add(&st->name, name,
			       nl <= KILN_TESTREPORT_MAX_NAME ? nl : KILN_TESTREPORT_MAX_NAME + 1);
	if (bad)
		buf_reset(&st->name);
	st->result = RESULTS_SUCCESS;
	st->duration_ms = -1;
	st->line = -1;
	const xmlChar *v;
	if ((v = testreport_junit_attr(nattr, attrs, "time", &n)))
		st->duration_ms = testreport_secs_to_ms((const char *)v, n);
	if ((v = testreport_junit_attr(nattr, attrs, "file", &n)) &&
	    buf_add(&st->file, v,
		    n <= KILN_TESTREPORT_MAX_FILE ? n : KILN_TESTREPORT_MAX_FILE + 1) < 0)
		buf_reset(&st->file);
	if ((v = testreport_junit_attr(nattr, attrs, "line", &n)) && n > 0 && n < 12) {
		int64_t line = 0;
		for (size_t i = 0; i < n && line >= 0; i++)
			line = v[i] >= '0' && v[i] <= '9' ? line * 10 + (v[i] - '0') : -1;
		st->line = line > 0 ? line : -1;
	}
	/* GoogleTest: status="notrun" / result="suppressed" or "skipped";
	 * CTest: status="disabled" or "notrun" */
	if ((v = testreport_junit_attr(nattr, attrs, "status", &n)) &&
	    ((n == 6 && memcmp(v, "notrun", 6) == 0) || (n == 8 && memcmp(v, "disabled", 8) == 0)))
		st->result = RESULTS_SKIPPED;
	if ((v = testreport_junit_attr(nattr, attrs, "result", &n)) &&
	    ((n == 7 && memcmp(v, "skipped", 7) == 0) ||
	     (n == 10 && memcmp(v, "suppressed", 10) == 0)))
		st->result = RESULTS_SKIPPED;
	st->in_case = true;
	st->case_depth = st->depth;
}

static void testreport_junit_outcome(struct junit_state *st, const xmlChar *local, int nattr,
				     const xmlChar **attrs)
{
	bool fail = testreport_junit_is(local, "failure") || testreport_junit_is(local, "error");
	bool skip = testreport_junit_is(local, "skipped");
	if (!fail && !skip)
		return; /* system-out, system-err, properties, Surefire's flaky/rerun elements */
	if (fail)
		st->result = RESULTS_FAILURE;
	else if (st->result != RESULTS_FAILURE)
		st->result = RESULTS_SKIPPED;
	size_t n;
	const xmlChar *m = testreport_junit_attr(nattr, attrs, "message", &n);
	if (st->msg.b.len)
		testreport_text_add(&st->msg, "\n", 1);
	if (m) {
		testreport_text_add(&st->msg, (const char *)m, n);
	} else {
		const xmlChar *t = testreport_junit_attr(nattr, attrs, "type", &n);
		if (t)
			testreport_text_add(&st->msg, (const char *)t, n);
	}
	st->text_depth = st->depth;
	st->text_sep = st->msg.b.len > 0;
}

static void testreport_junit_start(void *ctx, const xmlChar *local, const xmlChar *prefix,
				   const xmlChar *uri, int nns, const xmlChar **ns, int nattr,
				   int ndefaulted, const xmlChar **attrs)
{
	struct junit_state *st = ctx;
	st->depth++;
	if (st->depth > KILN_TESTREPORT_XML_MAX_DEPTH) {
		testreport_junit_stop(st, KILN_ETOOBIG,
				      xasprintf("XML nested deeper than %d elements",
						KILN_TESTREPORT_XML_MAX_DEPTH));
		return;
	}
	for (int i = 0; i < nattr; i++)
		if ((size_t)(attrs[5 * i + 4] - attrs[5 * i + 3]) > KILN_TESTREPORT_XML_MAX_ATTR) {
			testreport_junit_stop(
				st, KILN_ETOOBIG,
				xasprintf("XML attribute '%.40s' longer than %u bytes",
					  (const char *)attrs[5 * i],
					  KILN_TESTREPORT_XML_MAX_ATTR));
			return;
		}
	if (!st->seen_root) {
		st->seen_root = true;
		if (!testreport_junit_is(local, "testsuites") &&
		    !testreport_junit_is(local, "testsuite"))
			testreport_junit_stop(st, KILN_EPARSE,
					      xasprintf("not a JUnit report: the root element is "
							"'%.40s', not testsuites or testsuite",
							(const char *)local));
		return;
	}
	if (!st->in_case) {
		if (testreport_junit_is(local, "testcase"))
			testreport_junit_case_start(st, nattr, attrs);
		return;
	}
	if (st->depth == st->case_depth + 1)
		testreport_junit_outcome(st, local, nattr, attrs);
}

static void testreport_junit_end(void *ctx, const xmlChar *local, const xmlChar *prefix,
				 const xmlChar *uri)
{
	struct junit_state *st = ctx;
	if (st->text_depth == st->depth)
		st->text_depth = 0;
	if (st->in_case && st->depth == st->case_depth) {
		st->in_case = false;
		struct testreport_record rec = {
			.name = st->name.ptr,
			.result = st->result,
			.duration_ms = st->duration_ms,
			.message = testreport_text_get(&st->msg),
			.file = st->file.len ? st->file.ptr : NULL,
			.line = st->line,
		};
		int r = testreport_emit(st->tr, &rec);
		if (r < 0)
			testreport_junit_stop(st, r, NULL);
	}
	st->depth--;
}

static void testreport_junit_text(void *ctx, const xmlChar *ch, int len)
{
	struct junit_state *st = ctx;
	if (!st->text_depth || st->text_depth != st->depth || len <= 0)
		return;
	/* the message attribute, then the body (a traceback) */
	if (st->text_sep) {
		st->text_sep = false;
		testreport_text_add(&st->msg, "\n", 1);
	}
	testreport_text_add(&st->msg, (const char *)ch, (size_t)len);
}

static void testreport_junit_doctype(void *ctx, const xmlChar *name, const xmlChar *eid,
				     const xmlChar *sid)
{
	struct junit_state *st = ctx;
	testreport_junit_stop(st, KILN_EPARSE, xstrdup("a DOCTYPE in a test report is refused"));
}

static void testreport_junit_entity(void *ctx, const xmlChar *name, int type, const xmlChar *pid,
				    const xmlChar *sid, xmlChar *content)
{
	struct junit_state *st = ctx;
	testreport_junit_stop(st, KILN_EPARSE, xstrdup("an entity declaration is refused"));
}

static void testreport_junit_serror(void *ctx, xmlErrorPtr err)
{
	/* kept in the context's lastError; read when xmlParseChunk fails */
}

static void *testreport_junit_open(struct testreport *tr)
{
	struct junit_state *st = xcalloc(1, sizeof(*st));
	st->tr = tr;
	buf_init(&st->name, 2 * KILN_TESTREPORT_MAX_NAME + 8);
	buf_init(&st->file, KILN_TESTREPORT_MAX_FILE + 1);
	testreport_text_init(&st->msg, KILN_TESTREPORT_MAX_MESSAGE + 1);
	xmlInitParser();
	xmlSAXHandler sax;
	memset(&sax, 0, sizeof(sax));
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = testreport_junit_start;
	sax.endElementNs = testreport_junit_end;
	sax.characters = testreport_junit_text;
	sax.cdataBlock = testreport_junit_text;
	sax.internalSubset = testreport_junit_doctype;
	sax.externalSubset = testreport_junit_doctype;
	sax.entityDecl = testreport_junit_entity;
	sax.serror = testreport_junit_serror;
	st->ctxt = xmlCreatePushParserCtxt(&sax, st, NULL, 0, "report.xml");
	if (st->ctxt) {
		/* no network, no DTD loading, no entity substitution, default size
		 * limits (no XML_PARSE_HUGE); always UTF-8, whatever the XML
		 * declaration says (testreport_junit_feed checks it) */
		xmlCtxtUseOptions(st->ctxt,
				  XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC);
		st->ctxt->replaceEntities = 0;
		st->ctxt->loadsubset = 0;
		st->ctxt->validate = 0;
	}
	return st;
}

static void testreport_junit_free(void *p)
{
	struct junit_state *st = p;
	if (st->ctxt)
		xmlFreeParserCtxt(st->ctxt);
	buf_release(&st->name);
	buf_release(&st->file);
	testreport_text_release(&st->msg);
	free(st->stop_msg);
	free(st);
}

static int testreport_junit_check(struct junit_state *st, int rc)
{
	if (st->stop_r < 0)
		return st->stop_msg ? testreport_fail(st->tr, st->stop_r, "%s", st->stop_msg)
				    : st->stop_r;
	if (rc == 0 && st->ctxt->wellFormed)
		return 0;
	const xmlError *e = xmlCtxtGetLastError(st->ctxt);
	const char *m = e && e->message ? e->message : "malformed XML";
	size_t n = strlen(m);
	while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
		n--;
	return testreport_fail(st->tr, KILN_EPARSE, "XML line %d: %.*s", e ? e->line : 0, (int)n,
			       m);
}

static int testreport_junit_push(struct junit_state *st, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		int n = len > (1u << 20) ? 1 << 20 : (int)len;
		int rc = xmlParseChunk(st->ctxt, p, n, 0);
		int r = testreport_junit_check(st, rc);
		if (r < 0)
			return r;
		p += n;
		len -= (size_t)n;
	}
	st->offset += (uint64_t)(p - (const char *)data);
	return 0;
}

static int testreport_junit_not_utf8(struct junit_state *st, uint64_t at)
{
	return testreport_fail(st->tr, KILN_EPARSE,
			       "not UTF-8 at byte %" PRIu64 " (a JUnit report must be UTF-8)", at);
}

static int testreport_junit_feed(void *p, const char *data, size_t len)
{
	struct junit_state *st = p;
	if (!st->ctxt)
		return testreport_fail(st->tr, -ENOMEM, "cannot create an XML parser");
	bool partial;
	while (st->ncarry > 0 && len > 0) { /* finish the sequence cut last time */
		st->carry[st->ncarry++] = (unsigned char)*data++;
		len--;
		size_t ok = str_utf8_prefix(st->carry, st->ncarry, &partial);
		if (ok == st->ncarry) {
			st->ncarry = 0;
			int r = testreport_junit_push(st, st->carry, ok);
			if (r < 0)
				return r;
		} else if (!partial) {
			return testreport_junit_not_utf8(st, st->offset);
		}
	}
	size_t ok = str_utf8_prefix(data, len, &partial);
	if (ok < len && !partial)
		return testreport_junit_not_utf8(st, st->offset + ok);
	int r = testreport_junit_push(st, data, ok);
	if (r < 0)
		return r;
	memcpy(st->carry + st->ncarry, data + ok, len - ok); /* at most 3 bytes */
	st->ncarry += len - ok;
	return 0;
}

static int testreport_junit_finish(void *p)
{
	struct junit_state *st = p;
	if (!st->ctxt)
		return testreport_fail(st->tr, -ENOMEM, "cannot create an XML parser");
	if (st->ncarry > 0)
		return testreport_junit_not_utf8(st, st->offset);
	int rc = xmlParseChunk(st->ctxt, NULL, 0, 1);
	int r = testreport_junit_check(st, rc);
	if (r < 0)
		return r;
	if (!st->seen_root)
		return testreport_fail(st->tr, KILN_EPARSE, "no XML element in the report");
	return 0;
}

const struct testreport_fmt testreport_junit_fmt = {
	.format = TESTREPORT_JUNIT,
	.name = "junit",
	.open = testreport_junit_open,
	.feed = testreport_junit_feed,
	.finish = testreport_junit_finish,
	.free = testreport_junit_free,
};
