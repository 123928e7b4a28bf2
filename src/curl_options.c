#include "curl_options.h"

#include <lauxlib.h>
#include <string.h>

const char *rb_opt_string(lua_State *L, int opts, const char *field)
{
    lua_getfield(L, opts, field);
    const char *s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_pop(L, 1); /* the string stays alive: opts holds it */
    return s;
}

double rb_opt_number(lua_State *L, int opts, const char *field, double fallback)
{
    lua_getfield(L, opts, field);
    double v = lua_isnil(L, -1) ? fallback : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

int rb_opt_bool(lua_State *L, int opts, const char *field)
{
    lua_getfield(L, opts, field);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static void set_blob(CURL *easy, CURLoption option, const char *pem)
{
    struct curl_blob blob = {(void *)pem, strlen(pem), CURL_BLOB_COPY};
    curl_easy_setopt(easy, option, &blob);
}

void rb_curl_apply_tls(lua_State *L, int opts, CURL *easy, struct curl_slist **connect_to)
{
    const char *s;
    if ((s = rb_opt_string(L, opts, "ca_file")))
        curl_easy_setopt(easy, CURLOPT_CAINFO, s);
    if ((s = rb_opt_string(L, opts, "ca_pem")))
        set_blob(easy, CURLOPT_CAINFO_BLOB, s);
    if ((s = rb_opt_string(L, opts, "client_cert_file")))
        curl_easy_setopt(easy, CURLOPT_SSLCERT, s);
    if ((s = rb_opt_string(L, opts, "client_key_file")))
        curl_easy_setopt(easy, CURLOPT_SSLKEY, s);
    if ((s = rb_opt_string(L, opts, "client_cert_pem")))
        set_blob(easy, CURLOPT_SSLCERT_BLOB, s);
    if ((s = rb_opt_string(L, opts, "client_key_pem")))
        set_blob(easy, CURLOPT_SSLKEY_BLOB, s);
    if ((s = rb_opt_string(L, opts, "connect_to"))) {
        struct curl_slist *list = curl_slist_append(NULL, s);
        if (!list)
            luaL_error(L, "out of memory setting connect_to");
        curl_slist_free_all(*connect_to);
        *connect_to = list;
        curl_easy_setopt(easy, CURLOPT_CONNECT_TO, list);
    }
    if (rb_opt_bool(L, opts, "insecure")) {
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

const char *rb_curl_failure_class(CURLcode code)
{
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "resolve";
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE: return "tls";
    /* The handshake itself failed (not the certificate): often no TLS server at all on that port. */
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CIPHER: return "tls_handshake";
    /* An answer that is not HTTP: often a TLS server asked in plain HTTP. */
    case CURLE_WEIRD_SERVER_REPLY: return "protocol";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return "reset";
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return "url";
    default: return "other";
    }
}
