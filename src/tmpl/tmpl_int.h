/*
 * tmpl_int.h - internals of the template engine shared by its files: the
 * AST (mirroring handlebars.js' compiler/ast), the JavaScript value model the
 * renderer computes with, and the JS semantics (ToString, ToNumber, loose
 * equality, property order, JSON.stringify) that output must match.
 */
#ifndef HL_TMPL_TMPL_INT_H
#define HL_TMPL_TMPL_INT_H

#include "base/buf.h"
#include "tmpl/tmpl.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- AST ---- */

enum tmpl_expr_type {
	TE_PATH,
	TE_STRING,
	TE_NUMBER,
	TE_BOOL,
	TE_UNDEF,
	TE_NULL,
	TE_SEXPR,
};

struct tmpl_call;

struct tmpl_expr {
	enum tmpl_expr_type type;
	int line, col;
	/* TE_PATH */
	bool data;    /* @-path */
	int depth;    /* number of ../ */
	char **parts; /* the dig parts */
	size_t nparts;
	char *original; /* as handlebars' path.original (or a literal's String()) */
	/* literals */
	char *str;
	size_t slen;
	double num;
	bool b;
	/* TE_SEXPR */
	struct tmpl_call *call;
	/* TE_PATH that is a block parameter (compiler.js blockParamIndex):
	 * the number of programs up to the one declaring it and its index;
	 * bp_depth is -1 otherwise */
	int bp_depth, bp_index;
};

/* compiler.js classifySexpr */
enum tmpl_call_class {
	TC_SIMPLE,    /* a value (a complex path) */
	TC_AMBIGUOUS, /* a simple name: a registered helper if any, else a value */
	TC_HELPER,    /* a helper call (arguments, a hash, a subexpression, a
	               * known helper) */
};

struct tmpl_helper;

struct tmpl_call {
	/* a path; a literal name of a mustache, block or subexpression is
	 * turned into a one-part path at compile time */
	struct tmpl_expr *path;
	enum tmpl_call_class cls;
	bool simple; /* AST.helpers.simpleId(path) */
	/* TC_HELPER: the known helper of the first name, or the registered
	 * helper of a simple name; TC_AMBIGUOUS: the registered helper of the
	 * name; NULL when there is none */
	const struct tmpl_helper *helper;
	struct tmpl_expr **params;
	size_t nparams;
	char **hkeys;
	struct tmpl_expr **hvals;
	size_t nhash;
	bool has_hash;
};

struct tmpl_strip {
	bool open, close;
};

enum tmpl_node_type {
	TN_CONTENT,
	TN_COMMENT,
	TN_MUSTACHE,
	TN_BLOCK,
	TN_PARTIAL, /* with a program: a partial block {{#> name}} */
	TN_DECORATOR,
	TN_DECORATOR_BLOCK,
};

struct tmpl_program;

struct tmpl_node {
	enum tmpl_node_type type;
	int line, col;
	/* TN_CONTENT: original text, and the kept value [vstart, vend) */
	char *text;
	size_t len, vstart, vend;
	bool left_stripped, right_stripped;
	/* TN_COMMENT, TN_MUSTACHE, TN_PARTIAL */
	struct tmpl_strip strip;
	/* TN_MUSTACHE, TN_BLOCK: the call; TN_PARTIAL: params/hash in call,
	 * name in call->path */
	struct tmpl_call *call;
	/* TN_BLOCK */
	struct tmpl_program *program, *inverse;
	struct tmpl_strip open_strip, inverse_strip, close_strip;
	bool has_inverse_strip, has_close_strip;
	/* TN_PARTIAL */
	char *indent;
	/* TN_BLOCK: a raw block {{{{name}}}}, its program the raw content */
	bool raw;
	/* TN_BLOCK, TN_PARTIAL: a lookup of a block parameter happened in this
	 * program before this statement's helper call (with the program's
	 * bp_desc, handlebars' useBlockParams at that point) */
	bool bp_own;
};

struct tmpl_program {
	struct tmpl_node **body;
	size_t n, cap;
	bool chained;
	bool bp_desc;       /* a program inside it looks block parameters up */
	size_t ndecorators; /* decorators in body, run when it is instantiated */
};

struct hl_tmpl {
	char *name;
	struct tmpl_program *root;
};

/* Parses and applies whitespace control; errors name "name:line:col". */
int tmpl_parse(struct tmpl_program **out, const char *name, const char *src, size_t n,
               struct hl_err *err);
void tmpl_program_free(struct tmpl_program *p);

/* ---- lexer and parser state (lex.c, parse.c, whitespace.c) ---- */

enum tmpl_tok_type {
	T_CONTENT,
	T_COMMENT,
	T_OPEN,
	T_OPEN_UNESCAPED,
	T_OPEN_BLOCK,
	T_OPEN_ENDBLOCK,
	T_OPEN_INVERSE,
	T_OPEN_INVERSE_CHAIN,
	T_INVERSE,
	T_OPEN_PARTIAL,
	T_CLOSE,
	T_CLOSE_UNESCAPED,
	T_OPEN_SEXPR,
	T_CLOSE_SEXPR,
	T_EQUALS,
	T_ID,
	T_SEP,
	T_STRING,
	T_NUMBER,
	T_BOOLEAN,
	T_UNDEFINED,
	T_NULL,
	T_DATA,
	T_EOF,
	T_OPEN_RAW_BLOCK,
	T_CLOSE_RAW_BLOCK,
	T_END_RAW_BLOCK,
	T_OPEN_PARTIAL_BLOCK,
	T_OPEN_BLOCK_PARAMS,
	T_CLOSE_BLOCK_PARAMS,
};

/* Display names of the token types, for error messages. */
extern const char *const tmpl_tok_names[];

struct tmpl_tok {
	enum tmpl_tok_type type;
	size_t off, len; /* raw text */
	char *val;       /* processed text (content, id, string) */
	size_t vlen;
	bool sopen, sclose;
	bool deco; /* T_OPEN, T_OPEN_BLOCK: "{{*" or "{{#*", a decorator */
	int line, col;
};

struct tmpl_bpscope {
	const char *const *names; /* borrowed from the tokens */
	size_t n;
	bool own, desc;
};

struct tmpl_parser {
	const char *name;
	const char *src;
	size_t n;
	struct tmpl_tok *toks;
	size_t ntok, cap;
	size_t pos; /* parser cursor */
	/* incremental line/column tracking */
	size_t lc_off;
	int lc_line, lc_col;
	struct hl_err *err;
	int rc;
	int nest; /* block and subexpression nesting, bounded */
	/* the programs being parsed, innermost last (block parameters) */
	struct tmpl_bpscope *scopes;
	size_t nscopes, capscopes;
};

#define PARSE_MAX_NEST 100

/* AST.helpers.scopedId: /^\.|this\b/ on a path's original. */
bool tmpl_scoped_id(const char *orig);

/* JS whitespace (\s) at p (n bytes available): its length in bytes or 0. */
size_t tmpl_js_space(const char *p, size_t n);
/* JS line terminator (\n \r U+2028 U+2029) at p: its length or 0. */
size_t tmpl_js_line_term(const char *p, size_t n);

/* Tokenises p->src into p->toks, ending with T_EOF (lex.c). */
int tmpl_lex(struct tmpl_parser *p);
/* Applies whitespace control to a parsed template (whitespace.c). */
int tmpl_ws_apply(struct tmpl_parser *p, struct tmpl_program *root);

/* 1-based line and column of byte offset off (incremental). */
void tmpl_line_col(struct tmpl_parser *p, size_t off, int *line, int *col);
/* Record the first error as "name:line:col: msg" and return it (p->rc). */
int tmpl_perr_at(struct tmpl_parser *p, size_t off, const char *fmt, ...) HL_PRINTF(3, 4);
int tmpl_perr_tok(struct tmpl_parser *p, const struct tmpl_tok *t, const char *msg);
int tmpl_oom(struct tmpl_parser *p);
/* A NUL-terminated copy of n bytes, or NULL after recording HL_ENOMEM. */
char *tmpl_xstrndup(struct tmpl_parser *p, const char *s, size_t n);

/* ---- values ---- */

enum tv_type {
	TV_UNDEF,
	TV_NULL,
	TV_BOOL,
	TV_NUM,
	TV_STR,
	TV_ARR,
	TV_OBJ,
	TV_FUNC, /* a @partial-block (the only function a template can meet) */
};

/* A JavaScript value. Strings and containers are borrowed from the data or
 * from the render's arena. */
struct tv {
	enum tv_type t;
	bool b;
	double n;
	const char *s;
	size_t len;
	json_t *j;
	const void *fn; /* TV_FUNC: the renderer's partial block */
};

struct tv tv_undef(void);
/* A placeholder json_t for a value JSON cannot hold (NaN, Infinity,
 * undefined), mapped back by tv_from_json until tv_special_clear() (per
 * thread, at the end of a render). NULL on OOM. */
json_t *tv_special_new(struct tv v);
void tv_special_clear(void);
struct tv tv_from_json(json_t *j);
/* JS String(v) appended to out (undefined -> "undefined"). */
void tv_to_string(struct hl_buf *out, struct tv v);
/* As appended by handlebars' output: null and undefined append nothing. */
void tv_append_output(struct hl_buf *out, struct tv v);
double tv_to_number(struct tv v);
bool tv_truthy(struct tv v);
bool tv_strict_eq(struct tv a, struct tv b);
bool tv_loose_eq(struct tv a, struct tv b);
/* Number::toString(10). */
void tv_format_number(struct hl_buf *out, double d);
/* A new reference to v as JSON: a value JSON cannot hold (undefined, NaN,
 * Infinity, a function) becomes a tv_special_new() placeholder. NULL on
 * OOM. */
json_t *tv_to_json(struct tv v);
/* JSON.stringify(v, null, 2) (undefined and functions -> "null"). */
void tv_json_pretty(struct hl_buf *out, struct tv v);
/* Object.keys order of a jansson object: canonical array indexes ascending,
 * then the other keys in insertion order. Returns a malloc'd array of
 * borrowed keys (NULL when empty or on OOM; *n_out = 0 then). */
const char **tv_object_keys(json_t *obj, size_t *n_out);
/* Canonical array index ("0", "17"; not "01", not > 2^32-2)? */
bool tv_is_index(const char *k, unsigned long *idx_out);
/* Length in UTF-16 code units of UTF-8 text (invalid bytes count 1). */
size_t tv_utf16_len(const char *s, size_t n);

/* ---- helpers: one table for handlebars' built-ins and healer's helpers ---- */

struct tmpl_rt; /* the renderer's side of a call (render.c) */

/* One helper call: arguments in, a value (or text in sbuf) out. */
struct tmpl_hcall {
	const struct tmpl_helper *h;
	const struct tv *args;
	size_t nargs;
	const char *const *hkeys; /* hash arguments, in source order */
	const struct tv *hvals;
	size_t nhash;
	/* the result: a value, or a string whose text is in sbuf when
	 * res.t == TV_STR and res.s == NULL */
	struct tv res;
	struct hl_buf *sbuf;
	struct tmpl_rt *rt; /* for built-ins that run blocks */
};

enum {
	/* one of handlebars.js' knownHelpers: a helper call even without
	 * arguments, decided at compile time */
	TH_KNOWN = 1u << 0,
	/* must be called as a block (it runs options.fn / options.inverse) */
	TH_BLOCK = 1u << 1,
	/* a runtime hook (helperMissing, blockHelperMissing): known to the
	 * compiler but not callable by name */
	TH_HOOK = 1u << 2,
};

struct tmpl_helper {
	const char *name;
	/* 0, or -HL_E* (the renderer names the helper in the error) */
	int (*fn)(struct tmpl_hcall *hc);
	unsigned flags;
	int min_args, max_args; /* positional arguments; max -1: no bound */
};

/* The helper named name, or NULL (helpers.c). */
const struct tmpl_helper *tmpl_helper_find(const char *name);

/* handlebars.js' built-in helpers (render.c). */
int tmpl_bi_if(struct tmpl_hcall *hc); /* if and unless */
int tmpl_bi_each(struct tmpl_hcall *hc);
int tmpl_bi_with(struct tmpl_hcall *hc);
int tmpl_bi_lookup(struct tmpl_hcall *hc);
int tmpl_bi_log(struct tmpl_hcall *hc);
/* helperMissing and blockHelperMissing: handlebars moves them to hooks, so
 * a call by name fails */
int tmpl_bi_hook(struct tmpl_hcall *hc);

#endif
