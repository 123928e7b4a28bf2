/* The OpenSSL (libcrypto) functions runbook calls, each forwarding to libcrypto opened on first
 * use (dynlib.h): SHA-256 for plans and backups, SHA-1 and base64 for the WebSocket handshake,
 * random bytes for its masks. A `list` or `show` that checksums nothing never loads it. When
 * libcurl has loaded its own libcrypto, the same soname gives the same, already loaded, library. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "dynlib.h"

#ifndef RB_LIBCRYPTO_SONAME /* the Makefile passes the soname of the libcrypto the build compiled against */
#define RB_LIBCRYPTO_SONAME "libcrypto.so.3"
#endif

/* FUNCTION(return type, name, parameters, arguments); VOID_FUNCTION for those returning nothing. */
#define CRYPTO_FUNCTIONS(FUNCTION, VOID_FUNCTION) \
    FUNCTION(const char *, OpenSSL_version, (int type), (type)) \
    FUNCTION(const EVP_MD *, EVP_sha256, (void), ()) \
    FUNCTION(const EVP_MD *, EVP_sha1, (void), ()) \
    FUNCTION(EVP_MD_CTX *, EVP_MD_CTX_new, (void), ()) \
    VOID_FUNCTION(EVP_MD_CTX_free, (EVP_MD_CTX *ctx), (ctx)) \
    FUNCTION(int, EVP_DigestInit_ex, (EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl), (ctx, type, impl)) \
    FUNCTION(int, EVP_DigestUpdate, (EVP_MD_CTX *ctx, const void *data, size_t count), (ctx, data, count)) \
    FUNCTION(int, EVP_DigestFinal_ex, (EVP_MD_CTX *ctx, unsigned char *md, unsigned int *size), (ctx, md, size)) \
    FUNCTION(int, EVP_Digest, \
             (const void *data, size_t count, unsigned char *md, unsigned int *size, const EVP_MD *type, ENGINE *impl), \
             (data, count, md, size, type, impl)) \
    FUNCTION(int, EVP_EncodeBlock, (unsigned char *to, const unsigned char *from, int n), (to, from, n)) \
    FUNCTION(int, RAND_bytes, (unsigned char *buf, int num), (buf, num))

static const char *const crypto_symbols[] = { CRYPTO_FUNCTIONS(RB_DYNLIB_NAME, RB_DYNLIB_VOID_NAME) NULL };

struct rb_dynlib rb_libcrypto = { RB_LIBCRYPTO_SONAME, "libssl3", crypto_symbols, NULL, "" };

#define FORWARD(type, name, params, args) RB_DYNLIB_FORWARD(&rb_libcrypto, type, name, params, args)
#define VOID_FORWARD(name, params, args) RB_DYNLIB_VOID_FORWARD(&rb_libcrypto, name, params, args)

CRYPTO_FUNCTIONS(FORWARD, VOID_FORWARD)
