/* Options shared by every libcurl door (HTTP transfers, WebSocket exec): reading an options table
 * from Lua, and the TLS settings a kubeconfig or a hub connection can ask for. One copy, so both
 * doors verify servers and present client certificates the same way. */
#ifndef RUNBOOK_CURL_OPTIONS_H
#define RUNBOOK_CURL_OPTIONS_H
#include <curl/curl.h>
#include <lua.h>

/* Field `field` of the table at index `opts`: nil gives NULL / `fallback`; a wrong type raises. */
const char *rb_opt_string(lua_State *L, int opts, const char *field);
double rb_opt_number(lua_State *L, int opts, const char *field, double fallback);
int rb_opt_bool(lua_State *L, int opts, const char *field);

/* Applies ca_file, ca_pem, client_cert_file, client_key_file, client_cert_pem, client_key_pem,
 * connect_to ("HOST:PORT:CONNECT-HOST:CONNECT-PORT", how a kubeconfig's tls-server-name is honoured)
 * and insecure. libcurl keeps the connect_to list's pointer: the caller frees *connect_to after
 * curl_easy_cleanup. PEM blobs are copied by libcurl. */
void rb_curl_apply_tls(lua_State *L, int opts, CURL *easy, struct curl_slist **connect_to);

/* What kind of failure a libcurl error is, for the Lua side's retry decisions and hints:
 * "timeout", "resolve", "connect", "tls", "reset", "url" or "other". */
const char *rb_curl_failure_class(CURLcode code);

#endif
