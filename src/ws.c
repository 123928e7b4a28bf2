/* runbook.ws_core: a WebSocket client (RFC 6455) for Kubernetes exec. Debian's libcurl 7.88 has no
 * WebSocket support, so libcurl only connects (CURLOPT_CONNECT_ONLY: TCP, TLS, client certificates,
 * proxies, the same TLS options as http.c) and this file speaks HTTP/1.1 Upgrade and frames over
 * curl_easy_send/recv. Framing itself is in ws_frame.c (pure functions).
 *
 * Connecting is a mutation unless the caller declares the command read-only: the phase guard is
 * here, in C, so a runbook cannot exec a command while planning by forgetting to ask.
 *
 * Calls block (with timeouts); no Lua code runs inside libcurl. */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bindings.h"
#include "clock.h"
#include "curl_options.h"
#include "phase.h"
#include "ws_frame.h"

#define CONN_META "runbook.ws.Connection"
#define RECV_BUFFER (256 * 1024)
#define MAX_RESPONSE_HEAD (64 * 1024)
#define MAX_ERROR_BODY (1024 * 1024)
#define SEND_SLICE (64 * 1024)
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct ws_conn {
    CURL *easy;
    struct curl_slist *connect_to;
    curl_socket_t sock;
    struct ws_decoder decoder;
    uint8_t *buf; /* received bytes not yet decoded: buf[start .. start+len) */
    size_t start, len;
    int close_sent;
    int broken; /* the stream is unusable (protocol error, reset): reads fail at once */
    double send_timeout;
    char protocol[64];
};

/* ---- time and socket waits ---- */

/* Waits until the socket is ready for `events` or the deadline passes: 1 ready, 0 timed out. A signal
 * (the operator's first Ctrl-C asks the engine to stop after this action) does not end the wait. */
static int wait_socket(curl_socket_t sock, short events, double deadline)
{
    for (;;) {
        double left = deadline - rb_monotonic_seconds();
        if (left <= 0)
            return 0;
        struct pollfd p = {sock, events, 0};
        int n = poll(&p, 1, (int)(left * 1000) + 1);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return 1; /* let the next send/recv report the socket's error */
    }
}

/* Returns 0, or -1 with *error set ("timeout" or curl's message) and *kind set. */
static int send_all(struct ws_conn *c, const uint8_t *data, size_t len, double deadline, const char **error,
                    const char **kind)
{
    while (len > 0) {
        size_t sent = 0;
        CURLcode rc = curl_easy_send(c->easy, data, len, &sent);
        if (rc == CURLE_AGAIN) {
            if (!wait_socket(c->sock, POLLOUT, deadline)) {
                *error = "timed out sending to the server";
                *kind = "timeout";
                return -1;
            }
            continue;
        }
        if (rc != CURLE_OK) {
            *error = curl_easy_strerror(rc);
            *kind = "reset";
            return -1;
        }
        data += sent;
        len -= sent;
    }
    return 0;
}

/* Reads more bytes into the buffer: 1 got some, 0 end of stream, -1 error (*error, *kind). */
static int receive_more(struct ws_conn *c, double deadline, const char **error, const char **kind)
{
    if (c->start > 0 && c->len > 0)
        memmove(c->buf, c->buf + c->start, c->len);
    c->start = 0;
    if (c->len == RECV_BUFFER) {
        *error = "receive buffer full";
        *kind = "protocol";
        return -1;
    }
    for (;;) {
        size_t got = 0;
        CURLcode rc = curl_easy_recv(c->easy, c->buf + c->len, RECV_BUFFER - c->len, &got);
        if (rc == CURLE_AGAIN) {
            if (!wait_socket(c->sock, POLLIN, deadline)) {
                *error = "timeout";
                *kind = "timeout";
                return -1;
            }
            continue;
        }
        if (rc != CURLE_OK) {
            *error = curl_easy_strerror(rc);
            *kind = "reset";
            return -1;
        }
        if (got == 0)
            return 0;
        c->len += got;
        return 1;
    }
}

/* ---- frames out ---- */

static int send_frame(struct ws_conn *c, enum ws_opcode opcode, const uint8_t *payload, size_t len, double deadline,
                      const char **error, const char **kind)
{
    uint8_t mask[4];
    if (RAND_bytes(mask, sizeof mask) != 1) {
        *error = "no random bytes for the frame mask";
        *kind = "other";
        return -1;
    }
    uint8_t header[WS_MAX_HEADER];
    size_t header_len = ws_encode_header(header, 1, opcode, len, mask);
    if (send_all(c, header, header_len, deadline, error, kind) != 0)
        return -1;
    /* Masked in slices: a large stdin payload is never copied whole. */
    uint8_t slice[SEND_SLICE];
    for (size_t off = 0; off < len; off += SEND_SLICE) {
        size_t n = len - off < SEND_SLICE ? len - off : SEND_SLICE;
        memcpy(slice, payload + off, n);
        ws_apply_mask(slice, n, mask, off);
        if (send_all(c, slice, n, deadline, error, kind) != 0)
            return -1;
    }
    return 0;
}

static void send_close(struct ws_conn *c, uint16_t code)
{
    if (c->close_sent || c->broken || !c->easy)
        return;
    c->close_sent = 1;
    uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    const char *error, *kind;
    send_frame(c, WS_CLOSE, payload, sizeof payload, rb_monotonic_seconds() + 1.0, &error, &kind);
}

static void conn_release(struct ws_conn *c)
{
    if (c->easy) {
        send_close(c, 1000);
        curl_easy_cleanup(c->easy);
        c->easy = NULL;
    }
    curl_slist_free_all(c->connect_to);
    c->connect_to = NULL;
    free(c->buf);
    c->buf = NULL;
}

static int conn_gc(lua_State *L)
{
    conn_release(luaL_checkudata(L, 1, CONN_META));
    return 0;
}

static struct ws_conn *check_conn(lua_State *L)
{
    struct ws_conn *c = luaL_checkudata(L, 1, CONN_META);
    if (!c->easy)
        luaL_error(L, "attempt to use a closed WebSocket connection");
    return c;
}

/* ---- the opening handshake ---- */

static int push_failure(lua_State *L, const char *message, const char *kind)
{
    lua_pushnil(L);
    lua_pushstring(L, message);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    return 3;
}

static void base64(const unsigned char *in, int len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, len);
}

static void expected_accept(const char *key, char *out)
{
    char joined[128];
    snprintf(joined, sizeof joined, "%s%s", key, WS_GUID);
    unsigned char sha1[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(joined, strlen(joined), sha1, &n, EVP_sha1(), NULL);
    base64(sha1, (int)n, out);
}

/* The value of header `name` in the response head (lines after the status line), into out. */
static int find_header(const char *head, const char *name, char *out, size_t out_size)
{
    size_t name_len = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *v = line + name_len + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            const char *end = strstr(v, "\r\n");
            size_t n = end ? (size_t)(end - v) : strlen(v);
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            if (n >= out_size)
                n = out_size - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
    }
    return 0;
}

/* Decodes a chunked body in place; returns its length, or -1 if incomplete. With compact == 0 it only
 * measures: the body is left as received, so it can be decoded again once more of it arrived. */
static long dechunk(char *body, size_t len, int compact)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *eol = memmem(body + in, len - in, "\r\n", 2);
        if (!eol)
            return -1;
        /* strtoul would skip spaces and line breaks and take a sign ("-1" is SIZE_MAX): a hex digit first */
        if (!isxdigit((unsigned char)body[in]))
            return -1;
        size_t size = strtoul(body + in, NULL, 16);
        in = (size_t)(eol - body) + 2;
        if (size == 0)
            return (long)out;
        if (size > len - in || len - in - size < 2) /* not `in + size + 2 > len`: a huge size wraps */
            return -1;
        if (compact)
            memmove(body + out, body + in, size);
        out += size;
        in += size + 2;
    }
}

/* A refused upgrade: read the body (the API's Status, usually) and push nil, message, details. */
static int push_refusal(lua_State *L, struct ws_conn *c, int status, const char *head, size_t head_len, double deadline)
{
    char value[256];
    long want = -1;
    int chunked = find_header(head, "Transfer-Encoding", value, sizeof value) && strcasecmp(value, "chunked") == 0;
    if (!chunked && find_header(head, "Content-Length", value, sizeof value))
        want = strtol(value, NULL, 10);
    c->start += head_len;
    c->len -= head_len;
    const char *error, *kind;
    while ((want < 0 || (long)c->len < want) && c->len < MAX_ERROR_BODY && c->len + c->start < RECV_BUFFER) {
        if (chunked && dechunk((char *)c->buf + c->start, c->len, 0) >= 0)
            break;
        int got = receive_more(c, deadline, &error, &kind);
        if (got <= 0)
            break;
    }
    size_t body_len = want >= 0 && (size_t)want < c->len ? (size_t)want : c->len;
    if (chunked) {
        long n = dechunk((char *)c->buf + c->start, c->len, 1);
        body_len = n >= 0 ? (size_t)n : 0;
    }
    lua_pushnil(L);
    const char *eol = strstr(head, "\r\n");
    lua_pushfstring(L, "the server refused the WebSocket upgrade: %s",
                    lua_pushlstring(L, head, eol ? (size_t)(eol - head) : strlen(head)));
    lua_remove(L, -2);
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, "http");
    lua_setfield(L, -2, "kind");
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, (const char *)c->buf + c->start, body_len);
    lua_setfield(L, -2, "body");
    if (find_header(head, "Retry-After", value, sizeof value)) {
        lua_pushstring(L, value);
        lua_setfield(L, -2, "retry_after");
    }
    return 3;
}

static int add_header_line(luaL_Buffer *b, const char *line)
{
    if (strpbrk(line, "\r\n"))
        return -1; /* no header smuggling through a caller's value */
    luaL_addstring(b, line);
    luaL_addstring(b, "\r\n");
    return 0;
}

/* connect{url=, headers={"Name: value", ...}, protocols={...}, connect_timeout=, timeout=,
 *         readonly=, what=, ca_file=, ca_pem=, client_cert_file=, ... (as http.c)}
 * -> connection | nil, message, {kind=, status=, body=, retry_after=}
 * `timeout` bounds the handshake and every later send. Unless readonly is true, connecting is a
 * mutation (`what` names it in the refusal). */
static int ws_connect(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *url = rb_opt_string(L, 1, "url");
    if (!url)
        return luaL_error(L, "WebSocket connect without a url");
    if (!rb_opt_bool(L, 1, "readonly")) {
        const char *what = rb_opt_string(L, 1, "what");
        rb_phase_require_mutation(L, what ? what : "a WebSocket connection");
    }
    double timeout = rb_opt_number(L, 1, "timeout", 30);
    double deadline = rb_monotonic_seconds() + timeout;

    CURLU *parsed = curl_url();
    char *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    int bad_url = !parsed || curl_url_set(parsed, CURLUPART_URL, url, 0) != CURLUE_OK ||
                  curl_url_get(parsed, CURLUPART_HOST, &host, 0) != CURLUE_OK;
    if (!bad_url) {
        curl_url_get(parsed, CURLUPART_PORT, &port, 0);
        curl_url_get(parsed, CURLUPART_PATH, &path, 0);
        curl_url_get(parsed, CURLUPART_QUERY, &query, 0);
    }
    luaL_Buffer request;
    luaL_buffinit(L, &request);
    if (!bad_url) {
        luaL_addstring(&request, "GET ");
        luaL_addstring(&request, path ? path : "/");
        if (query) {
            luaL_addchar(&request, '?');
            luaL_addstring(&request, query);
        }
        luaL_addstring(&request, " HTTP/1.1\r\nHost: ");
        luaL_addstring(&request, host);
        if (port) {
            luaL_addchar(&request, ':');
            luaL_addstring(&request, port);
        }
        luaL_addstring(&request, "\r\n");
    }
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(parsed);
    if (bad_url) {
        luaL_pushresult(&request);
        return push_failure(L, "not a usable URL", "url");
    }

    unsigned char nonce[16];
    char key[32], accept[64];
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        return luaL_error(L, "no random bytes for the WebSocket key");
    base64(nonce, sizeof nonce, key);
    luaL_addstring(&request, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                             "User-Agent: runbook/" RUNBOOK_VERSION "\r\nSec-WebSocket-Key: ");
    luaL_addstring(&request, key);
    luaL_addstring(&request, "\r\n");
    int bad_header = 0;
    lua_getfield(L, 1, "protocols");
    if (lua_istable(L, -1) && luaL_len(L, -1) > 0) {
        int list = lua_gettop(L);
        luaL_Buffer *b = &request;
        lua_pushliteral(L, "Sec-WebSocket-Protocol: ");
        for (lua_Integer i = 1; i <= luaL_len(L, list); i++) {
            lua_geti(L, list, i);
            luaL_checkstring(L, -1);
            if (i > 1) {
                lua_pushliteral(L, ", ");
                lua_insert(L, -2);
                lua_concat(L, 3);
            } else {
                lua_concat(L, 2);
            }
        }
        /* the buffer may sit on the stack: add the line through a copy below it */
        const char *line = lua_tostring(L, -1);
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", line);
        lua_pop(L, 2);
        bad_header |= add_header_line(b, copy);
    } else {
        lua_pop(L, 1);
    }
    lua_getfield(L, 1, "headers");
    if (lua_istable(L, -1)) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, -1, i);
            size_t len;
            const char *line = luaL_checklstring(L, -1, &len);
            char *copy = malloc(len + 1);
            if (!copy)
                return luaL_error(L, "out of memory");
            memcpy(copy, line, len + 1);
            lua_pop(L, 2); /* the value and the list: the buffer must be on top when added to */
            bad_header |= add_header_line(&request, copy);
            free(copy);
            lua_getfield(L, 1, "headers");
        }
    }
    lua_pop(L, 1);
    luaL_addstring(&request, "\r\n");
    luaL_pushresult(&request);
    int request_index = lua_gettop(L);
    if (bad_header)
        return luaL_error(L, "WebSocket request header with a line break");

    struct ws_conn *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CONN_META);
    c->send_timeout = timeout;
    c->buf = malloc(RECV_BUFFER);
    c->easy = curl_easy_init();
    if (!c->buf || !c->easy)
        return luaL_error(L, "out of memory opening a WebSocket");
    ws_decoder_init(&c->decoder, 0);
    char curl_error[CURL_ERROR_SIZE] = "";
    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(rb_opt_number(L, 1, "connect_timeout", 10) * 1000));
    rb_curl_apply_tls(L, 1, e, &c->connect_to);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        const char *message = curl_error[0] ? curl_error : curl_easy_strerror(rc);
        lua_pushstring(L, message);
        conn_release(c);
        return push_failure(L, lua_tostring(L, -1), rb_curl_failure_class(rc));
    }
    curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &c->sock);

    size_t request_len;
    const char *request_text = lua_tolstring(L, request_index, &request_len);
    const char *error, *kind;
    c->broken = 1; /* until the handshake succeeds: no close frame on a plain HTTP stream */
    if (send_all(c, (const uint8_t *)request_text, request_len, deadline, &error, &kind) != 0) {
        conn_release(c);
        return push_failure(L, error, kind);
    }
    /* The response head, up to the blank line. */
    char *head_end = NULL;
    while (!(head_end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
        if (c->len >= MAX_RESPONSE_HEAD) {
            conn_release(c);
            return push_failure(L, "the server's response head is too large", "protocol");
        }
        int got = receive_more(c, deadline, &error, &kind);
        if (got <= 0) {
            conn_release(c);
            return push_failure(L, got == 0 ? "the server closed the connection during the WebSocket handshake" : error,
                                got == 0 ? "reset" : kind);
        }
    }
    size_t head_len = (size_t)(head_end - (char *)c->buf) + 4;
    char *head = malloc(head_len + 1);
    if (!head)
        return luaL_error(L, "out of memory");
    memcpy(head, c->buf, head_len);
    head[head_len - 2] = '\0'; /* keep the last header's CRLF for find_header */
    int status = 0;
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1) {
        free(head);
        conn_release(c);
        return push_failure(L, "the server did not answer with HTTP", "protocol");
    }
    if (status != 101) {
        int n = push_refusal(L, c, status, head, head_len, deadline);
        free(head);
        conn_release(c);
        return n;
    }
    char got_accept[128] = "", protocol[sizeof c->protocol] = "";
    expected_accept(key, accept);
    find_header(head, "Sec-WebSocket-Accept", got_accept, sizeof got_accept);
    find_header(head, "Sec-WebSocket-Protocol", protocol, sizeof protocol);
    free(head);
    if (strcmp(got_accept, accept) != 0) {
        conn_release(c);
        return push_failure(L, "the server's Sec-WebSocket-Accept does not match our key", "protocol");
    }
    memcpy(c->protocol, protocol, sizeof protocol);
    c->start = head_len; /* frames the server sent right after its head stay in the buffer */
    c->len -= head_len;
    c->broken = 0;
    return 1;
}

/* ---- reading and writing messages ---- */

static int fail_read(lua_State *L, struct ws_conn *c, const char *message, const char *kind)
{
    c->broken = 1;
    lua_pushnil(L);
    lua_pushstring(L, message);
    lua_pushstring(L, kind);
    return 3;
}

/* read([timeout]) -> "data", bytes, message_start, message_end
 *                  | "close", code, reason
 *                  | "pong" (an answer to our ping arrived)
 *                  | nil, message, kind ("timeout": nothing arrived in time, the stream is still good;
 *                                        "reset", "protocol": the stream is over)
 * Data comes in pieces as it arrives (a large message is never held whole). Pings are answered. */
static int conn_read(lua_State *L)
{
    struct ws_conn *c = check_conn(L);
    double deadline = rb_monotonic_seconds() + luaL_optnumber(L, 2, 30);
    if (c->broken)
        return fail_read(L, c, "the WebSocket stream already failed", "reset");
    const char *error, *kind;
    for (;;) {
        struct ws_event ev;
        size_t used = ws_decode(&c->decoder, c->buf + c->start, c->len, &ev);
        const uint8_t *data = ev.data;
        c->start += used;
        c->len -= used;
        switch (ev.kind) {
        case WS_EVENT_DATA:
            lua_pushliteral(L, "data");
            lua_pushlstring(L, (const char *)data, ev.len);
            lua_pushboolean(L, ev.message_start);
            lua_pushboolean(L, ev.message_end);
            return 4;
        case WS_EVENT_CONTROL:
            if (ev.opcode == WS_PING) {
                uint8_t payload[WS_MAX_CONTROL_PAYLOAD];
                memcpy(payload, data, ev.len);
                if (send_frame(c, WS_PONG, payload, ev.len, rb_monotonic_seconds() + c->send_timeout, &error, &kind) != 0)
                    return fail_read(L, c, error, kind);
            } else if (ev.opcode == WS_CLOSE) {
                uint16_t code = ev.len >= 2 ? (uint16_t)((data[0] << 8) | data[1]) : 1005;
                lua_pushliteral(L, "close");
                lua_pushinteger(L, code);
                lua_pushlstring(L, ev.len > 2 ? (const char *)data + 2 : "", ev.len > 2 ? ev.len - 2 : 0);
                send_close(c, code == 1005 ? 1000 : code);
                c->broken = 1;
                return 3;
            }
            /* A pong: reported, so that a caller that pinged knows the stream is alive. */
            lua_pushliteral(L, "pong");
            return 1;
        case WS_EVENT_ERROR:
            send_close(c, ev.close_code);
            return fail_read(L, c, ev.error, "protocol");
        case WS_EVENT_NEED_MORE: {
            int got = receive_more(c, deadline, &error, &kind);
            if (got == 0)
                return fail_read(L, c, "the connection ended without a WebSocket close frame", "reset");
            if (got < 0) {
                if (strcmp(kind, "timeout") == 0) {
                    lua_pushnil(L);
                    lua_pushliteral(L, "timeout");
                    lua_pushliteral(L, "timeout");
                    return 3;
                }
                return fail_read(L, c, error, kind);
            }
            break;
        }
        }
    }
}

/* send(bytes[, "binary"|"text"|"ping"]) -> true | nil, message, kind */
static int conn_send(lua_State *L)
{
    struct ws_conn *c = check_conn(L);
    size_t len;
    const char *payload = luaL_checklstring(L, 2, &len);
    static const char *const kinds[] = {"binary", "text", "ping", NULL};
    static const enum ws_opcode opcodes[] = {WS_BINARY, WS_TEXT, WS_PING};
    enum ws_opcode opcode = opcodes[luaL_checkoption(L, 3, "binary", kinds)];
    if (opcode == WS_PING)
        luaL_argcheck(L, len <= WS_MAX_CONTROL_PAYLOAD, 2, "a ping carries at most 125 bytes");
    if (c->broken || c->close_sent) {
        lua_pushnil(L);
        lua_pushliteral(L, "the WebSocket stream is closed");
        lua_pushliteral(L, "reset");
        return 3;
    }
    const char *error, *kind;
    if (send_frame(c, opcode, (const uint8_t *)payload, len, rb_monotonic_seconds() + c->send_timeout, &error, &kind) != 0)
        return fail_read(L, c, error, kind);
    lua_pushboolean(L, 1);
    return 1;
}

static int conn_protocol(lua_State *L)
{
    lua_pushstring(L, check_conn(L)->protocol);
    return 1;
}

/* close([code]): sends a close frame (best effort) and drops the connection. Idempotent. */
static int conn_close(lua_State *L)
{
    struct ws_conn *c = luaL_checkudata(L, 1, CONN_META);
    if (c->easy)
        send_close(c, (uint16_t)luaL_optinteger(L, 2, 1000));
    conn_release(c);
    return 0;
}

static const luaL_Reg conn_methods[] = {
    {"read", conn_read},
    {"send", conn_send},
    {"protocol", conn_protocol},
    {"close", conn_close},
    {NULL, NULL},
};

static const luaL_Reg ws_functions[] = {
    {"connect", ws_connect},
    {NULL, NULL},
};

int luaopen_runbook_ws_core(lua_State *L)
{
    luaL_newmetatable(L, CONN_META);
    luaL_newlib(L, conn_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, conn_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, conn_gc);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newlib(L, ws_functions);
    return 1;
}
