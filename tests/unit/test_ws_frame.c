/* C unit tests: WebSocket framing (ws_frame.c) on hand-made byte sequences, including the ways a
 * server can break the protocol, and byte-by-byte feeding (a frame split across any two reads). */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "ws_frame.h"

/* Feeds `in` to a fresh decoder in pieces of `step` bytes (as reads would bring them) and collects
 * the data of every DATA event into out; returns the number of events of each kind seen. */
struct tally {
    int data, control, errors, messages_started, messages_ended;
    size_t out_len;
    uint8_t out[1 << 16];
    int last_control_opcode;
    uint16_t close_code;
};

static void feed(const uint8_t *in, size_t len, size_t step, struct tally *t)
{
    struct ws_decoder d;
    ws_decoder_init(&d, 0);
    memset(t, 0, sizeof *t);
    uint8_t window[1 << 16];
    size_t have = 0, given = 0;
    for (;;) {
        struct ws_event ev;
        size_t used = ws_decode(&d, window, have, &ev);
        if (ev.kind == WS_EVENT_DATA) {
            t->data++;
            t->messages_started += ev.message_start;
            t->messages_ended += ev.message_end;
            memcpy(t->out + t->out_len, ev.data, ev.len);
            t->out_len += ev.len;
        } else if (ev.kind == WS_EVENT_CONTROL) {
            t->control++;
            t->last_control_opcode = ev.opcode;
        } else if (ev.kind == WS_EVENT_ERROR) {
            t->errors++;
            t->close_code = ev.close_code;
            return;
        }
        memmove(window, window + used, have - used);
        have -= used;
        if (ev.kind == WS_EVENT_NEED_MORE) {
            if (given == len)
                return;
            size_t n = len - given < step ? len - given : step;
            memcpy(window + have, in + given, n);
            have += n;
            given += n;
        }
    }
}

int main(void)
{
    uint8_t buf[1 << 16];
    uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};

    size_t n = ws_encode_header(buf, 1, WS_BINARY, 5, NULL);
    ok(n == 2 && buf[0] == 0x82 && buf[1] == 5, "short unmasked header");
    n = ws_encode_header(buf, 1, WS_BINARY, 300, mask);
    ok(n == 8 && buf[1] == (0x80 | 126) && buf[2] == 1 && buf[3] == 44 && memcmp(buf + 4, mask, 4) == 0,
       "16-bit length, masked");
    n = ws_encode_header(buf, 0, WS_TEXT, 70000, NULL);
    ok(n == 10 && buf[0] == 0x01 && buf[1] == 127 && buf[7] == 0x01 && buf[8] == 0x11 && buf[9] == 0x70,
       "64-bit length, not final");

    uint8_t data[10] = "abcdefghij", copy[10];
    memcpy(copy, data, 10);
    ws_apply_mask(copy, 10, mask, 0);
    ok(copy[0] == ('a' ^ 0x11) && copy[5] == ('f' ^ 0x22), "mask applies cyclically");
    ws_apply_mask(copy, 3, mask, 0);
    ws_apply_mask(copy + 3, 7, mask, 3);
    ok(memcmp(copy, data, 10) == 0, "masking in slices with an offset undoes it");

    /* A message in two fragments, a ping between them, then a close. */
    size_t len = 0;
    len += ws_encode_header(buf + len, 0, WS_BINARY, 3, NULL);
    memcpy(buf + len, "\x01" "ab", 3);
    len += 3;
    len += ws_encode_header(buf + len, 1, WS_PING, 2, NULL);
    memcpy(buf + len, "hi", 2);
    len += 2;
    len += ws_encode_header(buf + len, 1, WS_CONTINUATION, 4, NULL);
    memcpy(buf + len, "cdef", 4);
    len += 4;
    len += ws_encode_header(buf + len, 1, WS_CLOSE, 2, NULL);
    buf[len++] = 0x03;
    buf[len++] = 0xE8;
    for (size_t step = 1; step <= len; step++) {
        struct tally t;
        feed(buf, len, step, &t);
        if (!(t.errors == 0 && t.out_len == 7 && memcmp(t.out, "\x01" "abcdef", 7) == 0 && t.messages_started == 1 &&
              t.messages_ended == 1 && t.control == 2 && t.last_control_opcode == WS_CLOSE)) {
            ok(0, "fragmented message with a ping inside, fed %zu bytes at a time", step);
            break;
        }
        if (step == len)
            ok(1, "fragmented message with a ping inside decodes the same fed 1..%zu bytes at a time", len);
    }

    /* A large frame arrives in pieces, never needing the whole frame at once. */
    len = ws_encode_header(buf, 1, WS_BINARY, 40000, NULL);
    for (int i = 0; i < 40000; i++)
        buf[len + i] = (uint8_t)(i * 7);
    struct tally t;
    feed(buf, len + 40000, 4096, &t);
    ok(t.errors == 0 && t.out_len == 40000 && t.data > 1 && t.messages_started == 1 && t.messages_ended == 1,
       "a 40000-byte frame is delivered in %d pieces as it arrives", t.data);
    ok(t.out[39999] == (uint8_t)(39999 * 7), "its bytes are intact");

    len = ws_encode_header(buf, 1, WS_BINARY, 0, NULL);
    feed(buf, len, 1, &t);
    ok(t.errors == 0 && t.data == 1 && t.messages_started == 1 && t.messages_ended == 1 && t.out_len == 0,
       "an empty message is one DATA event of length 0");

    struct {
        const char *bytes;
        size_t len;
        const char *what;
    } bad[] = {
        {"\xC2\x00", 2, "reserved bit set"},
        {"\x83\x00", 2, "unknown opcode"},
        {"\x82\x81\x01\x02\x03\x04\x00", 7, "masked server frame"},
        {"\x09\x00", 2, "fragmented ping"},
        {"\x89\x7E\x00\x80", 4, "ping longer than 125 bytes"},
        {"\x88\x01\x00", 3, "close with a 1-byte payload"},
        {"\x80\x00", 2, "continuation without a message"},
        {"\x02\x00\x82\x00", 4, "new message inside a fragmented one"},
        {"\x82\x7F\x80\x00\x00\x00\x00\x00\x00\x00", 10, "64-bit length with the top bit set"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        feed((const uint8_t *)bad[i].bytes, bad[i].len, 1, &t);
        ok(t.errors == 1 && t.close_code == 1002, "protocol error: %s", bad[i].what);
    }

    struct ws_decoder limited;
    ws_decoder_init(&limited, 100);
    struct ws_event ev;
    len = ws_encode_header(buf, 1, WS_BINARY, 101, NULL);
    ws_decode(&limited, buf, len, &ev);
    ok(ev.kind == WS_EVENT_ERROR && ev.close_code == 1009, "a frame over the limit is refused with 1009");

    /* Truncated input never reads past what it was given (ASan checks this run). */
    for (size_t cut = 0; cut < 10; cut++) {
        struct ws_decoder d;
        ws_decoder_init(&d, 0);
        uint8_t *piece = malloc(cut ? cut : 1);
        memcpy(piece, "\x82\x7F\x00\x00\x00\x00\x00\x00\x01\x00", cut);
        ws_decode(&d, piece, cut, &ev);
        free(piece);
        if (ev.kind != WS_EVENT_NEED_MORE) {
            ok(0, "a header cut after %zu bytes asks for more", cut);
            break;
        }
        if (cut == 9)
            ok(1, "a header cut anywhere asks for more");
    }
    return done_testing();
}
