/* RFC 6455 framing as pure functions of their inputs (no I/O, no allocation), so a fuzzer can drive
 * the decoder with arbitrary bytes. ws.c does the I/O around them. */
#ifndef RUNBOOK_WS_FRAME_H
#define RUNBOOK_WS_FRAME_H
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
    WS_CONTINUATION = 0x0,
    WS_TEXT = 0x1,
    WS_BINARY = 0x2,
    WS_CLOSE = 0x8,
    WS_PING = 0x9,
    WS_PONG = 0xA,
};

#define WS_MAX_HEADER 14
#define WS_MAX_CONTROL_PAYLOAD 125

/* Writes a frame header into out (at most WS_MAX_HEADER bytes) and returns its length. A non-NULL
 * mask (4 bytes) sets the mask bit: every client frame must be masked. */
size_t ws_encode_header(uint8_t *out, int fin, enum ws_opcode opcode, uint64_t payload_length, const uint8_t *mask);

/* XORs data with the mask, as if the data started `offset` bytes into the payload. Its own inverse. */
void ws_apply_mask(uint8_t *data, size_t len, const uint8_t *mask, uint64_t offset);

enum ws_event_kind {
    WS_EVENT_NEED_MORE, /* nothing can be decoded from the bytes given: read more */
    WS_EVENT_DATA,      /* a piece of a text or binary message's payload */
    WS_EVENT_CONTROL,   /* a whole ping, pong or close frame */
    WS_EVENT_ERROR,     /* the server broke the protocol: close with `close_code` */
};

struct ws_event {
    enum ws_event_kind kind;
    enum ws_opcode opcode;   /* DATA: the message's opcode (text or binary); CONTROL: the frame's */
    int message_start;       /* DATA: this piece begins a message */
    int message_end;         /* DATA: this piece ends it */
    const uint8_t *data;     /* DATA and CONTROL: points into the input given to ws_decode */
    size_t len;
    uint16_t close_code;     /* ERROR: the close code to send (1002, 1009) */
    const char *error;       /* ERROR: what was wrong */
};

/* What the decoder remembers between calls: where it is in the current frame and message. */
struct ws_decoder {
    uint64_t frame_left;    /* payload bytes of the current data frame not yet delivered */
    int in_frame;           /* a data frame's header was read; its payload is being delivered */
    int frame_fin;
    int in_message;         /* a fragmented message is under way (continuations may follow) */
    enum ws_opcode message_opcode;
    int message_started;    /* the current message's first piece was delivered */
    uint64_t max_frame;     /* frames longer than this are refused (0: no limit) */
};

void ws_decoder_init(struct ws_decoder *d, uint64_t max_frame);

/* Decodes the next event from in[0..len), fills *ev and returns how many bytes it consumed: the
 * caller drops those and calls again with the rest. NEED_MORE means "read more bytes first" (it may
 * have consumed a data frame's header). A control frame is delivered only whole (at most 2 + 125
 * bytes); data is delivered in pieces as it arrives, without waiting for a whole frame, so memory
 * stays bounded whatever the frame size. An empty data frame is a DATA event of length 0. Server
 * frames must not be masked. After an ERROR the decoder must not be used again. */
size_t ws_decode(struct ws_decoder *d, const uint8_t *in, size_t len, struct ws_event *ev);

#endif
