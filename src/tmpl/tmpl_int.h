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
};

struct tmpl_call {
	struct tmpl_expr *path; /* a path, or a literal (transformed at use) */
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
	TN_PARTIAL,
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
};

struct tmpl_program {
	struct tmpl_node **body;
	size_t n, cap;
	bool chained;
};

struct hl_tmpl {
	char *name;
	struct tmpl_program *root;
};

/* Parses and applies whitespace control; errors name "name:line:col". */
int tmpl_parse(struct tmpl_program **out, const char *name, const char *src, size_t n,
               struct hl_err *err);
void tmpl_program_free(struct tmpl_program *p);

/* JS whitespace (\s) at p (n bytes available): its length in bytes or 0. */
size_t tmpl_js_space(const char *p, size_t n);

/* ---- values ---- */

enum tv_type {
	TV_UNDEF,
	TV_NULL,
	TV_BOOL,
	TV_NUM,
	TV_STR,
	TV_ARR,
	TV_OBJ,
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
/* JSON.stringify(v, null, 2) (undefined -> "null"). */
void tv_json_pretty(struct hl_buf *out, struct tv v);
/* Object.keys order of a jansson object: canonical array indexes ascending,
 * then the other keys in insertion order. Returns a malloc'd array of
 * borrowed keys (NULL when empty or on OOM; *n_out = 0 then). */
const char **tv_object_keys(json_t *obj, size_t *n_out);
/* Canonical array index ("0", "17"; not "01", not > 2^32-2)? */
bool tv_is_index(const char *k, unsigned long *idx_out);
/* Length in UTF-16 code units of UTF-8 text (invalid bytes count 1). */
size_t tv_utf16_len(const char *s, size_t n);

#endif
