/* The read-only guard's first layer, and whatever else reads SQL text without a server: a small SQL lexer
 * (comments, strings, dollar quotes, quoted names) that errs on the side of refusing, and the rules that
 * refuse, before anything is sent, what a read-only transaction does not stop (pg.c has the layers that need
 * the server). The guard runs twice, once as if backslashes escaped quotes in plain strings
 * (standard_conforming_strings off) and once as if not, so no string can hide code from it whatever the
 * session's setting. Pure functions of their input: the pg_guard fuzz target calls rb_pg_guard_reason. */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pg_guard.h"

enum token_kind { TOKEN_END, TOKEN_WORD, TOKEN_QUOTED_NAME, TOKEN_UNICODE_NAME, TOKEN_STRING, TOKEN_OTHER };

struct sql_token {
    enum token_kind kind;
    const char *text; /* a word, or the inside of a quoted name */
    size_t len;
    int depth;        /* parenthesis depth the token sits at */
};

struct sql_lexer {
    const char *p, *end;
    int backslash_quotes; /* whether '\'' escapes a quote in a plain '...' string */
    int depth;
};

static int is_space_char(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_name_start(char c)
{
    unsigned char u = (unsigned char)c;
    return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u == '_' || u >= 0x80;
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static void skip_space_and_comments(struct sql_lexer *lx)
{
    while (lx->p < lx->end) {
        if (is_space_char(*lx->p)) {
            lx->p++;
        } else if (lx->end - lx->p >= 2 && lx->p[0] == '-' && lx->p[1] == '-') {
            /* PostgreSQL ends a line comment at \r as well as \n: so must we, or code could hide here */
            while (lx->p < lx->end && *lx->p != '\n' && *lx->p != '\r')
                lx->p++;
        } else if (lx->end - lx->p >= 2 && lx->p[0] == '/' && lx->p[1] == '*') {
            int nesting = 0; /* PostgreSQL's block comments nest */
            while (lx->p < lx->end) {
                if (lx->end - lx->p >= 2 && lx->p[0] == '/' && lx->p[1] == '*') {
                    nesting++;
                    lx->p += 2;
                } else if (lx->end - lx->p >= 2 && lx->p[0] == '*' && lx->p[1] == '/') {
                    lx->p += 2;
                    if (--nesting == 0)
                        break;
                } else {
                    lx->p++;
                }
            }
        } else {
            return;
        }
    }
}

/* Skips a quoted run starting at the opening quote; the quote doubled stands for itself, and with
 * `backslashes` a backslash escapes the next character. An unterminated run ends the text. */
static void skip_quoted(struct sql_lexer *lx, char quote, int backslashes)
{
    lx->p++;
    while (lx->p < lx->end) {
        char c = *lx->p++;
        if (backslashes && c == '\\') {
            if (lx->p < lx->end)
                lx->p++;
        } else if (c == quote) {
            if (lx->p < lx->end && *lx->p == quote)
                lx->p++;
            else
                return;
        }
    }
}

/* $tag$ ... $tag$: returns 0 when the text at p does not open a dollar quote. */
static int skip_dollar_quote(struct sql_lexer *lx)
{
    const char *tag = lx->p + 1;
    const char *q = tag;
    if (q < lx->end && is_name_start(*q)) {
        while (q < lx->end && is_name_char(*q) && *q != '$')
            q++;
    }
    if (q >= lx->end || *q != '$')
        return 0;
    size_t tag_len = (size_t)(q + 1 - lx->p); /* "$tag$" */
    const char *body = q + 1;
    for (const char *s = body; s + tag_len <= lx->end; s++) {
        if (*s == '$' && memcmp(s, lx->p, tag_len) == 0) {
            lx->p = s + tag_len;
            return 1;
        }
    }
    lx->p = lx->end;
    return 1;
}

static void next_token(struct sql_lexer *lx, struct sql_token *t)
{
    skip_space_and_comments(lx);
    t->text = lx->p;
    t->len = 0;
    t->depth = lx->depth;
    if (lx->p >= lx->end) {
        t->kind = TOKEN_END;
        return;
    }
    char c = *lx->p;
    char next = lx->end - lx->p >= 2 ? lx->p[1] : '\0';
    char third = lx->end - lx->p >= 3 ? lx->p[2] : '\0';
    if ((c == 'u' || c == 'U') && next == '&' && (third == '"' || third == '\'')) {
        lx->p += 2;
        t->kind = third == '"' ? TOKEN_UNICODE_NAME : TOKEN_STRING;
        skip_quoted(lx, third, 0);
    } else if ((c == 'e' || c == 'E') && next == '\'') {
        lx->p++;
        t->kind = TOKEN_STRING;
        skip_quoted(lx, '\'', 1);
    } else if (strchr("bBxXnN", c) && next == '\'') {
        lx->p++;
        t->kind = TOKEN_STRING;
        skip_quoted(lx, '\'', lx->backslash_quotes);
    } else if (is_name_start(c)) {
        t->kind = TOKEN_WORD;
        while (lx->p < lx->end && is_name_char(*lx->p))
            lx->p++;
        t->len = (size_t)(lx->p - t->text);
    } else if (c == '"') {
        t->kind = TOKEN_QUOTED_NAME;
        skip_quoted(lx, '"', 0);
        t->text++;
        t->len = lx->p > t->text ? (size_t)(lx->p - t->text) - (lx->p[-1] == '"') : 0;
    } else if (c == '\'') {
        t->kind = TOKEN_STRING;
        skip_quoted(lx, '\'', lx->backslash_quotes);
    } else if (c == '$' && !(next >= '0' && next <= '9') && skip_dollar_quote(lx)) {
        t->kind = TOKEN_STRING;
    } else {
        /* Numbers, operators, punctuation and $1: one character at a time, so that a word right after
         * a digit ("1pg_sleep") is still seen as a word. */
        t->kind = TOKEN_OTHER;
        lx->p++;
        t->len = 1;
        if (c == '(')
            lx->depth++;
        else if (c == ')' && lx->depth > 0)
            t->depth = --lx->depth;
    }
}

/* The statement's first token, past any opening parentheses: "(SELECT ...)" starts with SELECT. */
static void first_token(struct sql_lexer *lx, struct sql_token *t)
{
    do
        next_token(lx, t);
    while (t->kind == TOKEN_OTHER && t->len == 1 && t->text[0] == '(');
}

static int token_is(const struct sql_token *t, const char *word)
{
    return t->kind == TOKEN_WORD && t->len == strlen(word) && strncasecmp(t->text, word, t->len) == 0;
}

/* A name as PostgreSQL may resolve it: a word, or a quoted name (compared without case, to err on the
 * side of refusing). `pattern` ending in '*' matches a prefix. */
static int name_matches(const struct sql_token *t, const char *pattern)
{
    if (t->kind != TOKEN_WORD && t->kind != TOKEN_QUOTED_NAME)
        return 0;
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*')
        return t->len >= n - 1 && strncasecmp(t->text, pattern, n - 1) == 0;
    return t->len == n && strncasecmp(t->text, pattern, n) == 0;
}

/* Functions whose effects a read-only transaction does not stop (signals, server files, replication
 * state, statistics, other sessions), or that run SQL text the guard cannot see. Session-level advisory
 * locks outlive the rollback and block other sessions until the connection closes (the _xact_ ones end
 * with the transaction and stay allowed). */
static const char *const FORBIDDEN_FUNCTIONS[] = {
    "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile*", "pg_promote",
    "pg_switch_wal", "pg_create_restore_point", "pg_backup_start", "pg_backup_stop", "pg_start_backup",
    "pg_stop_backup", "pg_wal_replay_pause", "pg_wal_replay_resume", "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot", "pg_drop_replication_slot", "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot", "pg_replication_slot_advance", "pg_logical_slot_get_changes",
    "pg_logical_slot_get_binary_changes", "pg_logical_emit_message", "pg_replication_origin_*",
    "pg_stat_reset*", "pg_stat_statements_reset", "pg_file_*", "pg_import_system_collations",
    "pg_truncate_visibility_map", "lo_export", "lo_import", "dblink*", "query_to_xml*", "ts_stat",
    "ts_rewrite", "pg_advisory_lock*", "pg_try_advisory_lock*", NULL,
};

static const char *const TRANSACTION_CONTROL[] = {
    "begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release", NULL,
};

static const char *const MAINTENANCE[] = {
    "vacuum", "analyze", "analyse", "reindex", "cluster", "checkpoint", "load", NULL,
};

static int word_in(const struct sql_token *t, const char *const *words)
{
    for (const char *const *w = words; *w; w++)
        if (token_is(t, *w))
            return 1;
    return 0;
}

/* The first word of a statement in capitals, for messages (never its values, which may be secrets). */
static void keyword_of(const struct sql_token *first, char *out, size_t size)
{
    size_t n = 0;
    if (first->kind == TOKEN_WORD) {
        for (; n < first->len && n + 1 < size && n < 24; n++) {
            char c = first->text[n];
            out[n] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
        }
    }
    if (n == 0)
        snprintf(out, size, "statement");
    else
        out[n] = '\0';
}

static void set_reason(char *why, size_t size, const struct sql_token *first, const char *reason)
{
    char keyword[32];
    keyword_of(first, keyword, sizeof keyword);
    snprintf(why, size, "SQL %s (%s)", keyword, reason);
}

/* COPY reads only when it goes to the client: its first TO or FROM outside parentheses must be TO STDOUT. */
static int copy_reaches_client(struct sql_lexer *lx)
{
    struct sql_token t;
    for (next_token(lx, &t); t.kind != TOKEN_END; next_token(lx, &t)) {
        if (t.depth != 0)
            continue;
        if (token_is(&t, "from"))
            return 0;
        if (token_is(&t, "to")) {
            next_token(lx, &t);
            return token_is(&t, "stdout");
        }
    }
    return 0;
}

/* LOCK without IN ... MODE takes ACCESS EXCLUSIVE; only ACCESS SHARE (what a SELECT takes) is harmless. */
static int lock_is_access_share(struct sql_lexer *lx)
{
    struct sql_token t;
    for (next_token(lx, &t); t.kind != TOKEN_END; next_token(lx, &t)) {
        if (!token_is(&t, "in"))
            continue;
        struct sql_token mode1, mode2, last;
        next_token(lx, &mode1);
        next_token(lx, &mode2);
        next_token(lx, &last);
        return token_is(&mode1, "access") && token_is(&mode2, "share") && token_is(&last, "mode");
    }
    return 0;
}

/* SET/RESET statements that touch read-only mode: SET TRANSACTION READ WRITE, SET SESSION CHARACTERISTICS
 * AS TRANSACTION READ WRITE, SET [default_]transaction_read_only = off, RESET ... */
static int set_touches_read_only(struct sql_lexer *lx)
{
    struct sql_token t, previous = {TOKEN_END, NULL, 0, 0};
    for (next_token(lx, &t); t.kind != TOKEN_END; next_token(lx, &t)) {
        if (name_matches(&t, "transaction_read_only") || name_matches(&t, "default_transaction_read_only"))
            return 1;
        if (token_is(&previous, "read") && token_is(&t, "write"))
            return 1;
        previous = t;
    }
    return 0;
}

/* The rules that depend on the statement's first word. */
static int first_word_refusal(const char *sql, size_t len, int backslash_quotes, char *why, size_t size)
{
    struct sql_lexer lx = {sql, sql + len, backslash_quotes, 0};
    struct sql_token first, second;
    first_token(&lx, &first);
    if (first.kind != TOKEN_WORD)
        return 0;
    struct sql_lexer rest = lx;
    next_token(&rest, &second);
    if (word_in(&first, TRANSACTION_CONTROL) || (token_is(&first, "prepare") && token_is(&second, "transaction"))) {
        set_reason(why, size, &first, "transaction control; use conn:transaction()");
        return 1;
    }
    if (token_is(&first, "do")) {
        set_reason(why, size, &first, "an anonymous code block could hide what it calls");
        return 1;
    }
    if (word_in(&first, MAINTENANCE)) {
        set_reason(why, size, &first, "a maintenance command");
        return 1;
    }
    rest = lx;
    if (token_is(&first, "copy") && !copy_reaches_client(&rest)) {
        set_reason(why, size, &first, "only COPY ... TO STDOUT reads; this one reaches a server file or program, or writes");
        return 1;
    }
    rest = lx;
    if (token_is(&first, "lock") && !lock_is_access_share(&rest)) {
        set_reason(why, size, &first, "a lock mode stronger than ACCESS SHARE blocks writers");
        return 1;
    }
    rest = lx;
    if ((token_is(&first, "set") || token_is(&first, "reset")) && set_touches_read_only(&rest)) {
        set_reason(why, size, &first, "it changes read-only mode");
        return 1;
    }
    return 0;
}

/* The rules about names anywhere in the statement. */
static int name_refusal(const char *sql, size_t len, int backslash_quotes, char *why, size_t size)
{
    struct sql_lexer lx = {sql, sql + len, backslash_quotes, 0};
    struct sql_token t;
    for (next_token(&lx, &t); t.kind != TOKEN_END; next_token(&lx, &t)) {
        if (t.kind == TOKEN_UNICODE_NAME) {
            snprintf(why, size, "SQL with a U&\"...\" name (it could spell a function the guard refuses)");
            return 1;
        }
        if (token_is(&t, "execute")) {
            snprintf(why, size, "SQL EXECUTE (a prepared statement could hide what it calls)");
            return 1;
        }
        for (const char *const *f = FORBIDDEN_FUNCTIONS; *f; f++) {
            if (name_matches(&t, *f)) {
                snprintf(why, size, "SQL calling %.*s() (it acts outside the transaction or runs SQL text)",
                         (int)(t.len > 64 ? 64 : t.len), t.text);
                return 1;
            }
        }
    }
    return 0;
}

int rb_pg_guard_reason(const char *sql, size_t len, char *why, size_t why_size)
{
    for (int backslash_quotes = 0; backslash_quotes <= 1; backslash_quotes++) {
        if (first_word_refusal(sql, len, backslash_quotes, why, why_size) ||
            name_refusal(sql, len, backslash_quotes, why, why_size))
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Other questions about a statement's text */

void rb_pg_statement_keyword(const char *sql, char *out, size_t size)
{
    struct sql_lexer lx = {sql, sql + strlen(sql), 0, 0};
    struct sql_token first;
    first_token(&lx, &first);
    keyword_of(&first, out, size);
}

/* Whether sql is COPY ... TO STDOUT however the session reads backslashes: checked before any phase,
 * since sending anything else would do something copy_to was not asked to do. */
int rb_pg_is_copy_to_stdout(const char *sql, size_t len)
{
    for (int backslash_quotes = 0; backslash_quotes <= 1; backslash_quotes++) {
        struct sql_lexer lx = {sql, sql + len, backslash_quotes, 0};
        struct sql_token first;
        next_token(&lx, &first);
        if (!token_is(&first, "copy") || !copy_reaches_client(&lx))
            return 0;
    }
    return 1;
}

void rb_pg_push_masked_literals(lua_State *L, const char *sql, size_t len, int backslash_quotes)
{
    struct sql_lexer lx = {sql, sql + len, backslash_quotes, 0};
    struct sql_token t;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *copied = sql;
    for (next_token(&lx, &t); t.kind != TOKEN_END; next_token(&lx, &t)) {
        if (t.kind != TOKEN_STRING)
            continue;
        luaL_addlstring(&b, copied, (size_t)(t.text - copied));
        luaL_addstring(&b, "'...'");
        copied = lx.p;
    }
    luaL_addlstring(&b, copied, (size_t)(sql + len - copied));
    luaL_pushresult(&b);
}
