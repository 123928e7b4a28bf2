/* Fuzz target: how ws.c reads the server's answer to the upgrade request (the response head's
 * headers, and a refusal's chunked body). Those readers are static in ws.c, so this file
 * includes it whole and calls them as ws_connect and push_refusal do. Input: a response, head and body. */
#include "../../src/ws.c"

#include <stdio.h>

#include "fuzz.h"

static void check_header(const char *head, const char *name, size_t out_size)
{
    char *out = malloc(out_size); /* exactly out_size bytes: a write past it is a heap overflow */
    if (!out)
        abort();
    if (find_header(head, name, out, out_size) && strlen(out) >= out_size)
        abort();
    free(out);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *head_end = memmem(data, size, "\r\n\r\n", 4);
    if (!head_end)
        return 0;
    /* the head as ws_connect copies it: NUL-terminated after the last header's CRLF */
    size_t head_len = (size_t)(head_end - (const char *)data) + 4;
    char *head = malloc(head_len + 1);
    memcpy(head, data, head_len);
    head[head_len - 2] = '\0';
    int status = 0;
    if (sscanf(head, "HTTP/1.%*d %d", &status) == 1) {
        char value[256];
        check_header(head, "Sec-WebSocket-Accept", 128);
        check_header(head, "Sec-WebSocket-Protocol", sizeof ((struct ws_conn *)0)->protocol);
        check_header(head, "Retry-After", sizeof value);
        check_header(head, "Content-Length", sizeof value);
        if (find_header(head, "Transfer-Encoding", value, sizeof value) && strcasecmp(value, "chunked") == 0) {
            size_t body_len = size - head_len;
            char *body = malloc(body_len ? body_len : 1); /* exactly the bytes received */
            memcpy(body, data + head_len, body_len);
            /* as push_refusal: measured while the body arrives, decoded in place once complete */
            long measured = dechunk(body, body_len, 0);
            long n = dechunk(body, body_len, 1);
            if (n != measured || n > (long)body_len)
                abort();
            free(body);
        }
    }
    free(head);
    return 0;
}
