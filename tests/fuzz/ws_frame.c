/* Fuzz target: the WebSocket frame reader (src/ws_frame.c), as ws.c drives it.
 * Input: byte 0 picks the frame size limit, byte 1 the sizes in which the stream arrives, the rest is
 * what the server sent. The stream is decoded twice, all at once and in pieces (a read may end
 * anywhere), and both must tell the same story: same messages, control frames and error. Every event
 * must point inside the bytes given, and a frame header the encoder writes must decode to itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ws_frame.h"

struct story {
    uint8_t *bytes; /* messages, control frames and the error, as tagged records */
    size_t len, cap;
    uint8_t *message; /* the payload of the message under way */
    size_t message_len;
    int in_message;
};

static void add(struct story *s, const void *p, size_t n)
{
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2 + 64;
        s->bytes = realloc(s->bytes, s->cap);
        if (!s->bytes)
            abort();
    }
    memcpy(s->bytes + s->len, p, n);
    s->len += n;
}

static void add_record(struct story *s, char tag, int opcode, const uint8_t *p, size_t n)
{
    uint8_t head[2 + sizeof n];
    head[0] = (uint8_t)tag;
    head[1] = (uint8_t)opcode;
    memcpy(head + 2, &n, sizeof n);
    add(s, head, sizeof head);
    add(s, p, n);
}

static void check(int condition, const char *what)
{
    if (!condition) {
        fprintf(stderr, "ws_frame: %s\n", what);
        abort();
    }
}

/* Records one event; returns 0 when decoding must stop (an error). */
static int record(struct story *s, const struct ws_event *ev, const uint8_t *in, size_t len, size_t used)
{
    check(used <= len, "consumed more bytes than it was given");
    switch (ev->kind) {
    case WS_EVENT_NEED_MORE:
        return 1;
    case WS_EVENT_DATA:
        check(ev->data >= in && ev->data + ev->len <= in + len, "data points outside the input");
        check(ev->opcode == WS_TEXT || ev->opcode == WS_BINARY, "data of a message that is not text or binary");
        check(ev->message_start == !s->in_message, "message_start does not match the messages seen");
        check(used > 0, "a data event consumed nothing (the reader would loop)");
        s->in_message = 1;
        memcpy(s->message + s->message_len, ev->data, ev->len);
        s->message_len += ev->len;
        if (ev->message_end) {
            add_record(s, 'M', ev->opcode, s->message, s->message_len);
            s->message_len = 0;
            s->in_message = 0;
        }
        return 1;
    case WS_EVENT_CONTROL:
        check(ev->data >= in && ev->data + ev->len <= in + len, "control payload points outside the input");
        check(ev->len <= WS_MAX_CONTROL_PAYLOAD, "a control frame longer than 125 bytes");
        check(ev->opcode == WS_PING || ev->opcode == WS_PONG || ev->opcode == WS_CLOSE, "control event of a data opcode");
        check(used == (size_t)(ev->data + ev->len - in), "a control frame not consumed whole");
        add_record(s, 'C', ev->opcode, ev->data, ev->len);
        return 1;
    case WS_EVENT_ERROR:
        check(ev->error != NULL && (ev->close_code == 1002 || ev->close_code == 1009), "error without reason or code");
        add_record(s, 'E', ev->close_code & 0xFF, (const uint8_t *)ev->error, strlen(ev->error));
        return 0;
    }
    check(0, "unknown event kind");
    return 0;
}

/* Decodes `stream` arriving in pieces of the sizes `steps` gives (0: all at once), as conn_read does:
 * a buffer of received bytes, decoded until the decoder needs more. */
static void decode(const uint8_t *stream, size_t size, uint64_t max_frame, const uint8_t *steps, size_t nsteps,
                   struct story *s)
{
    struct ws_decoder d;
    ws_decoder_init(&d, max_frame);
    uint8_t *buf = malloc(size ? size : 1);
    size_t start = 0, len = 0, given = 0, step = 0;
    for (;;) {
        struct ws_event ev;
        size_t used = ws_decode(&d, buf + start, len, &ev);
        if (!record(s, &ev, buf + start, len, used))
            break;
        start += used;
        len -= used;
        if (ev.kind != WS_EVENT_NEED_MORE)
            continue;
        if (given == size)
            break;
        size_t n = nsteps ? (size_t)steps[step++ % nsteps] % 17 + 1 : size;
        if (n > size - given)
            n = size - given;
        memmove(buf, buf + start, len); /* a fresh copy, as receive_more compacts its buffer */
        start = 0;
        memcpy(buf + len, stream + given, n);
        len += n;
        given += n;
    }
    if (s->in_message)
        add_record(s, 'P', 0, s->message, s->message_len);
    free(buf);
}

/* A header the encoder writes must decode to the same frame. */
static void check_encoder(const uint8_t *payload, size_t len, int fin, int opcode_pick)
{
    static const enum ws_opcode opcodes[] = {WS_TEXT, WS_BINARY, WS_PING, WS_PONG};
    enum ws_opcode opcode = opcodes[opcode_pick & 3];
    if (opcode >= WS_CLOSE) {
        fin = 1;
        if (len > WS_MAX_CONTROL_PAYLOAD)
            len = WS_MAX_CONTROL_PAYLOAD;
    }
    uint8_t *frame = malloc(WS_MAX_HEADER + len + 1);
    size_t header = ws_encode_header(frame, fin, opcode, len, NULL);
    check(header <= WS_MAX_HEADER, "header longer than WS_MAX_HEADER");
    memcpy(frame + header, payload, len);
    struct ws_decoder d;
    ws_decoder_init(&d, 0);
    struct ws_event ev;
    size_t used = ws_decode(&d, frame, header + len, &ev);
    check(ev.kind == (opcode >= WS_CLOSE ? WS_EVENT_CONTROL : WS_EVENT_DATA), "encoded frame decodes to another kind");
    check(used == header + len && ev.len == len && memcmp(ev.data, payload, len) == 0, "encoded frame does not round-trip");
    check(ev.opcode == opcode, "encoded frame changed opcode");
    if (ev.kind == WS_EVENT_DATA)
        check(ev.message_end == fin, "encoded frame changed FIN");
    /* masking is its own inverse, from any offset */
    uint8_t mask[4] = {len ? payload[0] : 0, 0x5A, 0xA5, 0x3C};
    memcpy(frame, payload, len);
    ws_apply_mask(frame, len, mask, (uint64_t)opcode_pick);
    ws_apply_mask(frame, len, mask, (uint64_t)opcode_pick);
    check(memcmp(frame, payload, len) == 0, "masking twice is not the identity");
    free(frame);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const uint64_t limits[] = {0, 1, 125, 126, 65535, 65536, 1 << 20, UINT64_MAX >> 1};
    uint64_t max_frame = limits[data[0] & 7];
    const uint8_t *stream = data + 2;
    size_t n = size - 2;
    struct story whole = {0}, pieces = {0};
    whole.message = malloc(n + 1);
    pieces.message = malloc(n + 1);
    decode(stream, n, max_frame, NULL, 0, &whole);
    /* byte 1 picks how reads are cut: one byte at a time, or sizes taken from the stream itself */
    if (data[1] & 1)
        decode(stream, n, max_frame, (const uint8_t[]){0}, 1, &pieces);
    else
        decode(stream, n, max_frame, stream, n, &pieces);
    check(whole.len == pieces.len && (whole.len == 0 || memcmp(whole.bytes, pieces.bytes, whole.len) == 0),
          "decoding in pieces tells another story than decoding all at once");
    free(whole.bytes);
    free(pieces.bytes);
    free(whole.message);
    free(pieces.message);
    check_encoder(stream, n, (data[1] & 2) != 0, data[1] >> 2);
    return 0;
}
