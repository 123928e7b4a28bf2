/* The libcurl functions runbook calls, each forwarding to libcurl opened on first use (dynlib.h).
 * CURL_FUNCTIONS lists them with their prototypes from <curl/curl.h>; the compiler checks every
 * definition against the header's declaration. The three variadic ones are written out below. */
#define CURL_DISABLE_TYPECHECK /* curl.h would otherwise make curl_easy_setopt a macro under gcc */
#include <stdarg.h>
#include <curl/curl.h>

#include "dynlib.h"

#ifndef RB_LIBCURL_SONAME /* the Makefile passes the soname of the libcurl the build compiled against */
#define RB_LIBCURL_SONAME "libcurl.so.4"
#endif

/* FUNCTION(return type, name, parameters, arguments); VOID_FUNCTION for those returning nothing. */
#define CURL_FUNCTIONS(FUNCTION, VOID_FUNCTION) \
    FUNCTION(CURLcode, curl_global_init, (long flags), (flags)) \
    VOID_FUNCTION(curl_global_cleanup, (void), ()) \
    FUNCTION(curl_version_info_data *, curl_version_info, (CURLversion age), (age)) \
    FUNCTION(CURL *, curl_easy_init, (void), ()) \
    FUNCTION(CURLcode, curl_easy_perform, (CURL *curl), (curl)) \
    VOID_FUNCTION(curl_easy_cleanup, (CURL *curl), (curl)) \
    FUNCTION(CURLcode, curl_easy_recv, (CURL *curl, void *buffer, size_t buflen, size_t *n), (curl, buffer, buflen, n)) \
    FUNCTION(CURLcode, curl_easy_send, (CURL *curl, const void *buffer, size_t buflen, size_t *n), \
             (curl, buffer, buflen, n)) \
    FUNCTION(const char *, curl_easy_strerror, (CURLcode code), (code)) \
    VOID_FUNCTION(curl_free, (void *p), (p)) \
    FUNCTION(CURLM *, curl_multi_init, (void), ()) \
    FUNCTION(CURLMcode, curl_multi_add_handle, (CURLM *multi, CURL *easy), (multi, easy)) \
    FUNCTION(CURLMcode, curl_multi_remove_handle, (CURLM *multi, CURL *easy), (multi, easy)) \
    FUNCTION(CURLMcode, curl_multi_perform, (CURLM *multi, int *running), (multi, running)) \
    FUNCTION(CURLMcode, curl_multi_poll, \
             (CURLM *multi, struct curl_waitfd extra_fds[], unsigned int extra_nfds, int timeout_ms, int *ret), \
             (multi, extra_fds, extra_nfds, timeout_ms, ret)) \
    FUNCTION(CURLMsg *, curl_multi_info_read, (CURLM *multi, int *msgs_in_queue), (multi, msgs_in_queue)) \
    FUNCTION(CURLMcode, curl_multi_cleanup, (CURLM *multi), (multi)) \
    FUNCTION(const char *, curl_multi_strerror, (CURLMcode code), (code)) \
    FUNCTION(struct curl_slist *, curl_slist_append, (struct curl_slist *list, const char *data), (list, data)) \
    VOID_FUNCTION(curl_slist_free_all, (struct curl_slist *list), (list)) \
    FUNCTION(CURLU *, curl_url, (void), ()) \
    VOID_FUNCTION(curl_url_cleanup, (CURLU *url), (url)) \
    FUNCTION(CURLUcode, curl_url_get, (CURLU *url, CURLUPart what, char **part, unsigned int flags), \
             (url, what, part, flags)) \
    FUNCTION(CURLUcode, curl_url_set, (CURLU *url, CURLUPart what, const char *part, unsigned int flags), \
             (url, what, part, flags))

static const char *const curl_symbols[] = {
    CURL_FUNCTIONS(RB_DYNLIB_NAME, RB_DYNLIB_VOID_NAME) "curl_easy_setopt", "curl_easy_getinfo", "curl_multi_setopt", NULL
};

struct rb_dynlib rb_libcurl = { RB_LIBCURL_SONAME, "libcurl4", curl_symbols, NULL, "" };

#define FORWARD(type, name, params, args) RB_DYNLIB_FORWARD(&rb_libcurl, type, name, params, args)
#define VOID_FORWARD(name, params, args) RB_DYNLIB_VOID_FORWARD(&rb_libcurl, name, params, args)

CURL_FUNCTIONS(FORWARD, VOID_FORWARD)

/* The variadic three take one more argument whose C type the option's number range tells (curl.h's
 * CURLOPTTYPE_* bases, shared by CURLMOPT_*; every CURLINFO_* takes a pointer). It is read with that
 * type and passed on with it, as libcurl reads it. Function pointers travel as one generic function
 * pointer type: every ABI libcurl supports passes all function pointers alike. */
typedef void (*any_function)(void);

#define FORWARD_BY_OPTION_TYPE(target, handle, option, ap) \
    ((option) < CURLOPTTYPE_OBJECTPOINT     ? (target)((handle), (option), va_arg((ap), long)) \
     : (option) < CURLOPTTYPE_FUNCTIONPOINT ? (target)((handle), (option), va_arg((ap), void *)) \
     : (option) < CURLOPTTYPE_OFF_T         ? (target)((handle), (option), va_arg((ap), any_function)) \
     : (option) < CURLOPTTYPE_BLOB          ? (target)((handle), (option), va_arg((ap), curl_off_t)) \
                                            : (target)((handle), (option), va_arg((ap), void *)))

CURLcode(curl_easy_setopt)(CURL *curl, CURLoption option, ...)
{
    static CURLcode (*target)(CURL *, CURLoption, ...);
    if (!target)
        target = (CURLcode(*)(CURL *, CURLoption, ...))rb_dynlib_symbol(&rb_libcurl, "curl_easy_setopt");
    va_list ap;
    va_start(ap, option);
    CURLcode result = FORWARD_BY_OPTION_TYPE(target, curl, option, ap);
    va_end(ap);
    return result;
}

CURLMcode(curl_multi_setopt)(CURLM *multi, CURLMoption option, ...)
{
    static CURLMcode (*target)(CURLM *, CURLMoption, ...);
    if (!target)
        target = (CURLMcode(*)(CURLM *, CURLMoption, ...))rb_dynlib_symbol(&rb_libcurl, "curl_multi_setopt");
    va_list ap;
    va_start(ap, option);
    CURLMcode result = FORWARD_BY_OPTION_TYPE(target, multi, option, ap);
    va_end(ap);
    return result;
}

CURLcode(curl_easy_getinfo)(CURL *curl, CURLINFO info, ...)
{
    static CURLcode (*target)(CURL *, CURLINFO, ...);
    if (!target)
        target = (CURLcode(*)(CURL *, CURLINFO, ...))rb_dynlib_symbol(&rb_libcurl, "curl_easy_getinfo");
    va_list ap;
    va_start(ap, info);
    void *answer = va_arg(ap, void *);
    va_end(ap);
    return target(curl, info, answer);
}
