#include "ws_frame.h"

#include <string.h>

size_t ws_encode_header(uint8_t *out, int fin, enum ws_opcode opcode, uint64_t payload_length, const uint8_t *mask)
{
    size_t n = 0;
    out[n++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    uint8_t mask_bit = mask ? 0x80 : 0;
    if (payload_length < 126) {
        out[n++] = (uint8_t)(mask_bit | payload_length);
    } else if (payload_length <= 0xFFFF) {
        out[n++] = mask_bit | 126;
        out[n++] = (uint8_t)(payload_length >> 8);
        out[n++] = (uint8_t)payload_length;
    } else {
        out[n++] = mask_bit | 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            out[n++] = (uint8_t)(payload_length >> shift);
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

void ws_apply_mask(uint8_t *data, size_t len, const uint8_t *mask, uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        data[i] ^= mask[(offset + i) & 3];
}

void ws_decoder_init(struct ws_decoder *d, uint64_t max_frame)
{
    memset(d, 0, sizeof *d);
    d->max_frame = max_frame;
}

static size_t protocol_error(struct ws_event *ev, uint16_t code, const char *why)
{
    ev->kind = WS_EVENT_ERROR;
    ev->close_code = code;
    ev->error = why;
    return 0;
}

/* Hands out up to `len` bytes of the current data frame's payload. */
static size_t deliver(struct ws_decoder *d, const uint8_t *in, size_t len, struct ws_event *ev)
{
    size_t n = d->frame_left < len ? (size_t)d->frame_left : len;
    ev->kind = WS_EVENT_DATA;
    ev->opcode = d->message_opcode;
    ev->message_start = !d->message_started;
    ev->data = in;
    ev->len = n;
    d->message_started = 1;
    d->frame_left -= n;
    if (d->frame_left == 0) {
        d->in_frame = 0;
        if (d->frame_fin) {
            ev->message_end = 1;
            d->in_message = 0;
            d->message_started = 0;
        }
    }
    return n;
}

size_t ws_decode(struct ws_decoder *d, const uint8_t *in, size_t len, struct ws_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (d->in_frame) {
        if (len == 0) {
            ev->kind = WS_EVENT_NEED_MORE;
            return 0;
        }
        return deliver(d, in, len, ev);
    }
    if (len < 2) {
        ev->kind = WS_EVENT_NEED_MORE;
        return 0;
    }
    int fin = (in[0] & 0x80) != 0;
    int opcode = in[0] & 0x0F;
    if (in[0] & 0x70)
        return protocol_error(ev, 1002, "the server set reserved bits without an extension");
    if (opcode != WS_CONTINUATION && opcode != WS_TEXT && opcode != WS_BINARY && opcode != WS_CLOSE &&
        opcode != WS_PING && opcode != WS_PONG)
        return protocol_error(ev, 1002, "the server sent an unknown opcode");
    if (in[1] & 0x80)
        return protocol_error(ev, 1002, "the server sent a masked frame");
    uint64_t payload = in[1] & 0x7F;
    size_t header = 2;
    if (payload == 126) {
        header = 4;
        if (len < header) {
            ev->kind = WS_EVENT_NEED_MORE;
            return 0;
        }
        payload = ((uint64_t)in[2] << 8) | in[3];
    } else if (payload == 127) {
        header = 10;
        if (len < header) {
            ev->kind = WS_EVENT_NEED_MORE;
            return 0;
        }
        payload = 0;
        for (int i = 2; i < 10; i++)
            payload = (payload << 8) | in[i];
        if (payload >> 63)
            return protocol_error(ev, 1002, "the server sent a frame length with its top bit set");
    }
    if (opcode >= WS_CLOSE) {
        if (!fin || payload > WS_MAX_CONTROL_PAYLOAD)
            return protocol_error(ev, 1002, "the server sent a fragmented or long control frame");
        if (opcode == WS_CLOSE && payload == 1)
            return protocol_error(ev, 1002, "the server sent a close frame with a 1-byte payload");
        if (len < header + payload) {
            ev->kind = WS_EVENT_NEED_MORE;
            return 0;
        }
        ev->kind = WS_EVENT_CONTROL;
        ev->opcode = (enum ws_opcode)opcode;
        ev->data = in + header;
        ev->len = (size_t)payload;
        return header + (size_t)payload;
    }
    if (opcode == WS_CONTINUATION) {
        if (!d->in_message)
            return protocol_error(ev, 1002, "the server sent a continuation frame outside a message");
    } else {
        if (d->in_message)
            return protocol_error(ev, 1002, "the server started a message inside a fragmented one");
        d->in_message = 1;
        d->message_opcode = (enum ws_opcode)opcode;
        d->message_started = 0;
    }
    if (d->max_frame && payload > d->max_frame)
        return protocol_error(ev, 1009, "the server sent a frame larger than allowed");
    d->in_frame = 1;
    d->frame_fin = fin;
    d->frame_left = payload;
    if (payload == 0)
        return header + deliver(d, in + header, 0, ev);
    if (len == header) {
        ev->kind = WS_EVENT_NEED_MORE;
        return header;
    }
    return header + deliver(d, in + header, len - header, ev);
}
