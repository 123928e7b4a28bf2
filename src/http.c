/* runbook.http_core: HTTP transfers on one libcurl multi handle.
 * start() queues a transfer and returns at once; wait() drives every queued transfer, so the Lua
 * scheduler can keep several requests in flight while runbook code reads as sequential calls.
 * Callbacks here only append bytes to C buffers: no Lua code ever runs inside libcurl. */
#include <curl/curl.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

#include "bindings.h"
#include "crashpoint.h"
#include "curl_options.h"
#include "phase.h"

#define TRANSFER_META "runbook.http.Transfer"
#define DEFAULT_MAX_BODY (256L * 1024 * 1024)

enum transfer_state { TRANSFER_IDLE, TRANSFER_RUNNING, TRANSFER_DONE };

struct byte_buffer {
    char *data;
    size_t len, cap, limit;
    int overflowed;
};

struct transfer {
    CURL *easy;
    struct curl_slist *request_headers;
    struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO keeps the pointer: freed with the transfer */
    struct byte_buffer body;
    struct byte_buffer header_block; /* the header lines of the last response only */
    enum transfer_state state;
    int tls_sent, tls_received; /* TLS handshake bytes each way (from libcurl's debug callback) */
    CURLcode result;
    char error[CURL_ERROR_SIZE];
};

static CURLM *multi = NULL;
static int curl_ready = 0;

/* libcurl (and OpenSSL under it) is initialised on the first request, not at start-up: commands
 * that make no request (list, show, version) do not pay for it. */
static void ensure_curl(lua_State *L)
{
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            luaL_error(L, "libcurl failed to initialise");
        curl_ready = 1;
    }
    if (!multi) {
        multi = curl_multi_init();
        if (!multi)
            luaL_error(L, "libcurl failed to create a multi handle");
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 64L);
    }
}

static int buffer_append(struct byte_buffer *b, const char *data, size_t n)
{
    if (b->len + n > b->limit) {
        b->overflowed = 1;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;
    size_t n = size * nmemb;
    return buffer_append(&t->body, data, n) == 0 ? n : 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;
    size_t n = size * nmemb;
    /* A new status line starts a new response (after 100 Continue, or a proxy's CONNECT reply). */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        t->header_block.len = 0;
    return buffer_append(&t->header_block, data, n) == 0 ? n : 0;
}

/* Only notes that TLS bytes went each way: what they were (or any header, token included) is not kept. */
static int on_debug(CURL *easy, curl_infotype type, char *data, size_t size, void *userdata)
{
    (void)easy, (void)data, (void)size;
    struct transfer *t = userdata;
    if (type == CURLINFO_SSL_DATA_OUT)
        t->tls_sent = 1;
    else if (type == CURLINFO_SSL_DATA_IN)
        t->tls_received = 1;
    return 0;
}

static void transfer_release(struct transfer *t)
{
    if (t->easy) {
        if (t->state == TRANSFER_RUNNING && multi)
            curl_multi_remove_handle(multi, t->easy);
        curl_easy_cleanup(t->easy);
        t->easy = NULL;
    }
    curl_slist_free_all(t->request_headers);
    curl_slist_free_all(t->connect_to);
    t->request_headers = NULL;
    t->connect_to = NULL;
    free(t->body.data);
    free(t->header_block.data);
    memset(&t->body, 0, sizeof t->body);
    memset(&t->header_block, 0, sizeof t->header_block);
    t->state = TRANSFER_DONE;
}

static int transfer_gc(lua_State *L)
{
    transfer_release(luaL_checkudata(L, 1, TRANSFER_META));
    return 0;
}

static int is_mutating_method(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && strcmp(method, "OPTIONS") != 0;
}

/* A Kubernetes SelfSubjectAccessReview ("may I patch persistentvolumes?") is POSTed because it has a
 * body, but it is a question: the API server answers for the caller's credentials and stores nothing.
 * Plans ask it to check apply's permissions in advance (lua/runbook/k8s/access.lua), so it is the one
 * POST a read-only phase lets through: exactly that path, at the end of the URL's path. */
static int is_access_review(const char *method, const char *url)
{
    static const char path[] = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    const size_t n = sizeof path - 1;
    if (strcmp(method, "POST") != 0)
        return 0;
    size_t end = strcspn(url, "?#");
    return end >= n && memcmp(url + end - n, path, n) == 0;
}

/* start{method=, url=, headers={"Name: value",...}, body=, timeout=, connect_timeout=, stall_timeout=,
 *       ca_file=, ca_pem=, client_cert_file=, client_key_file=, client_cert_pem=, client_key_pem=,
 *       connect_to=, insecure=, max_body=, no_proxy=, connect_only=} -> transfer.
 * Mutating methods are refused unless the phase allows them. */
static int http_start(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *method = rb_opt_string(L, 1, "method");
    const char *url = rb_opt_string(L, 1, "url");
    if (!method)
        method = "GET";
    if (!url)
        return luaL_error(L, "http request without a url");
    if (is_mutating_method(method) && !is_access_review(method, url)) {
        char what[512];
        snprintf(what, sizeof what, "HTTP %s %.400s", method, url);
        rb_phase_require_mutation(L, what);
    }
    ensure_curl(L);

    struct transfer *t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, TRANSFER_META);
    t->easy = curl_easy_init();
    if (!t->easy)
        return luaL_error(L, "out of memory starting an HTTP request");
    t->body.limit = (size_t)rb_opt_number(L, 1, "max_body", (double)DEFAULT_MAX_BODY);
    t->header_block.limit = 1024 * 1024;

    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    /* Verbose only feeds on_debug, which prints nothing: it is how a TLS handshake that a plain-HTTP
     * server never answers (it waits for a request line) is told apart from a slow response. */
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, t);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "runbook/" RUNBOOK_VERSION);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(rb_opt_number(L, 1, "timeout", 30) * 1000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(rb_opt_number(L, 1, "connect_timeout", 10) * 1000));
    double stall = rb_opt_number(L, 1, "stall_timeout", 0);
    if (stall > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)stall);
    }

    /* For probes that diagnose a failure: no proxy in between (a proxy's own answer would mislead), and
     * with connect_only nothing but the connection (and TLS handshake) is made: no request is sent. */
    if (rb_opt_bool(L, 1, "no_proxy"))
        curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    if (rb_opt_bool(L, 1, "connect_only"))
        curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);

    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    lua_getfield(L, 1, "body");
    if (!lua_isnil(L, -1)) {
        size_t len;
        const char *body = luaL_checklstring(L, -1, &len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
        /* A body alone makes libcurl send POST: the method on the wire must be the one the guard judged
         * (a GET with a body while planning would otherwise be a POST that creates things). */
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    lua_pop(L, 1);

    lua_getfield(L, 1, "headers");
    if (lua_istable(L, -1)) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, -1, i);
            struct curl_slist *next = curl_slist_append(t->request_headers, luaL_checkstring(L, -1));
            if (!next)
                return luaL_error(L, "out of memory building request headers");
            t->request_headers = next;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    /* No "Expect: 100-continue" round trip for small JSON bodies. */
    t->request_headers = curl_slist_append(t->request_headers, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->request_headers);
    rb_curl_apply_tls(L, 1, t->easy, &t->connect_to);

    CURLMcode mc = curl_multi_add_handle(multi, e);
    if (mc != CURLM_OK)
        return luaL_error(L, "cannot start HTTP request: %s", curl_multi_strerror(mc));
    t->state = TRANSFER_RUNNING;
    return 1;
}

static void collect_finished(void)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(multi, msg->easy_handle);
        if (t) {
            t->result = msg->data.result;
            t->state = TRANSFER_DONE;
            if (t->result == CURLE_OK)
                rb_crash_point("http-response");
        }
    }
}

/* wait(seconds): drives all transfers for at most `seconds` or until one finishes; returns how many run. */
static int http_wait(lua_State *L)
{
    double seconds = luaL_optnumber(L, 1, 0);
    int running = 0;
    if (!multi) {
        lua_pushinteger(L, 0);
        return 1;
    }
    curl_multi_perform(multi, &running);
    collect_finished();
    if (running > 0 && seconds > 0) {
        curl_multi_poll(multi, NULL, 0, (int)(seconds * 1000), NULL);
        curl_multi_perform(multi, &running);
        collect_finished();
    }
    lua_pushinteger(L, running);
    return 1;
}

static struct transfer *check_transfer(lua_State *L)
{
    return luaL_checkudata(L, 1, TRANSFER_META);
}

static int transfer_done(lua_State *L)
{
    lua_pushboolean(L, check_transfer(L)->state == TRANSFER_DONE);
    return 1;
}

static void push_headers(lua_State *L, const struct byte_buffer *block)
{
    lua_newtable(L);
    const char *p = block->data, *end = block->data ? block->data + block->len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon && colon > p) {
            luaL_Buffer name;
            luaL_buffinit(L, &name);
            for (const char *c = p; c < colon; c++)
                luaL_addchar(&name, (char)tolower((unsigned char)*c));
            luaL_pushresult(&name);
            const char *v = colon + 1, *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            if (lua_isstring(L, -1)) { /* repeated header: join like a list */
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);
            } else {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            }
            lua_rawset(L, -3);
        }
        p = line_end + 1;
    }
}

/* result() -> status, headers, body, timing | nil, message, class */
static int transfer_result(lua_State *L)
{
    struct transfer *t = check_transfer(L);
    if (t->state != TRANSFER_DONE)
        return luaL_error(L, "HTTP transfer has not finished");
    if (t->easy == NULL)
        return luaL_error(L, "HTTP transfer was released");
    if (t->result != CURLE_OK) {
        lua_pushnil(L);
        if (t->body.overflowed)
            lua_pushfstring(L, "response larger than %d MiB", (int)(t->body.limit >> 20));
        else
            lua_pushstring(L, t->error[0] ? t->error : curl_easy_strerror(t->result));
        lua_pushstring(L, rb_curl_failure_class(t->result));
        return 3;
    }
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(L, status);
    push_headers(L, &t->header_block);
    lua_pushlstring(L, t->body.data ? t->body.data : "", t->body.len);
    curl_off_t total_us = 0;
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &total_us);
    lua_pushnumber(L, (double)total_us / 1e6);
    return 4;
}

/* tls_unanswered() -> true while a TLS handshake is under way that the server has not answered a byte of. */
static int transfer_tls_unanswered(lua_State *L)
{
    struct transfer *t = check_transfer(L);
    lua_pushboolean(L, t->tls_sent && !t->tls_received);
    return 1;
}

static int transfer_cancel(lua_State *L)
{
    transfer_release(check_transfer(L));
    return 0;
}

static int http_versions(lua_State *L)
{
    curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    lua_pushstring(L, v->version);
    lua_pushstring(L, v->ssl_version ? v->ssl_version : "none");
    return 2;
}

static int multi_gc(lua_State *L)
{
    (void)L;
    if (multi) {
        curl_multi_cleanup(multi);
        multi = NULL;
    }
    if (curl_ready) {
        curl_global_cleanup();
        curl_ready = 0;
    }
    return 0;
}

static const luaL_Reg http_functions[] = {
    {"start", http_start},
    {"wait", http_wait},
    {"versions", http_versions},
    {NULL, NULL},
};

static const luaL_Reg transfer_methods[] = {
    {"done", transfer_done},
    {"result", transfer_result},
    {"cancel", transfer_cancel},
    {"tls_unanswered", transfer_tls_unanswered},
    {NULL, NULL},
};

int luaopen_runbook_http_core(lua_State *L)
{
    luaL_newmetatable(L, TRANSFER_META);
    luaL_newlib(L, transfer_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, transfer_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, transfer_gc);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);

    luaL_newlib(L, http_functions);
    /* The multi handle is cleaned up when the Lua state closes: a sentinel with __gc, created before
     * any transfer, so Lua finalizes it after them (finalizers run in reverse order of creation).
     * Transfers also release themselves from the multi handle if it is still there. */
    lua_newuserdatauv(L, 1, 0);
    lua_newtable(L);
    lua_pushcfunction(L, multi_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "runbook.http.multi");
    return 1;
}
