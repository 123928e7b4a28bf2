/* The libpq functions runbook calls, each forwarding to libpq opened on first use (dynlib.h).
 * PQ_FUNCTIONS lists them with their prototypes from <libpq-fe.h>; the compiler checks every
 * definition against the header's declaration. */
#include <libpq-fe.h>

#include "dynlib.h"

#ifndef RB_LIBPQ_SONAME /* the Makefile passes the soname of the libpq the build compiled against */
#define RB_LIBPQ_SONAME "libpq.so.5"
#endif

/* FUNCTION(return type, name, parameters, arguments); VOID_FUNCTION for those returning nothing. */
#define PQ_FUNCTIONS(FUNCTION, VOID_FUNCTION) \
    FUNCTION(int, PQlibVersion, (void), ()) \
    FUNCTION(PQconninfoOption *, PQconninfoParse, (const char *conninfo, char **errmsg), (conninfo, errmsg)) \
    VOID_FUNCTION(PQconninfoFree, (PQconninfoOption *options), (options)) \
    FUNCTION(PGconn *, PQconnectdbParams, (const char *const *keywords, const char *const *values, int expand_dbname), \
             (keywords, values, expand_dbname)) \
    VOID_FUNCTION(PQfinish, (PGconn *conn), (conn)) \
    FUNCTION(ConnStatusType, PQstatus, (const PGconn *conn), (conn)) \
    FUNCTION(PGTransactionStatusType, PQtransactionStatus, (const PGconn *conn), (conn)) \
    FUNCTION(char *, PQerrorMessage, (const PGconn *conn), (conn)) \
    FUNCTION(int, PQbackendPID, (const PGconn *conn), (conn)) \
    FUNCTION(int, PQserverVersion, (const PGconn *conn), (conn)) \
    FUNCTION(int, PQsocket, (const PGconn *conn), (conn)) \
    FUNCTION(int, PQsslInUse, (PGconn *conn), (conn)) \
    FUNCTION(char *, PQdb, (const PGconn *conn), (conn)) \
    FUNCTION(char *, PQuser, (const PGconn *conn), (conn)) \
    FUNCTION(char *, PQhost, (const PGconn *conn), (conn)) \
    FUNCTION(char *, PQport, (const PGconn *conn), (conn)) \
    FUNCTION(PQnoticeReceiver, PQsetNoticeReceiver, (PGconn *conn, PQnoticeReceiver proc, void *arg), \
             (conn, proc, arg)) \
    FUNCTION(char *, PQescapeIdentifier, (PGconn *conn, const char *str, size_t len), (conn, str, len)) \
    FUNCTION(char *, PQescapeLiteral, (PGconn *conn, const char *str, size_t len), (conn, str, len)) \
    FUNCTION(unsigned char *, PQunescapeBytea, (const unsigned char *strtext, size_t *retbuflen), \
             (strtext, retbuflen)) \
    VOID_FUNCTION(PQfreemem, (void *ptr), (ptr)) \
    FUNCTION(int, PQsendQuery, (PGconn *conn, const char *query), (conn, query)) \
    FUNCTION(int, PQsendQueryParams, \
             (PGconn *conn, const char *command, int nParams, const Oid *paramTypes, \
              const char *const *paramValues, const int *paramLengths, const int *paramFormats, int resultFormat), \
             (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat)) \
    FUNCTION(int, PQconsumeInput, (PGconn *conn), (conn)) \
    FUNCTION(int, PQisBusy, (PGconn *conn), (conn)) \
    FUNCTION(PGresult *, PQgetResult, (PGconn *conn), (conn)) \
    FUNCTION(int, PQgetCopyData, (PGconn *conn, char **buffer, int async), (conn, buffer, async)) \
    FUNCTION(int, PQputCopyEnd, (PGconn *conn, const char *errormsg), (conn, errormsg)) \
    FUNCTION(PGcancel *, PQgetCancel, (PGconn *conn), (conn)) \
    FUNCTION(int, PQcancel, (PGcancel *cancel, char *errbuf, int errbufsize), (cancel, errbuf, errbufsize)) \
    VOID_FUNCTION(PQfreeCancel, (PGcancel *cancel), (cancel)) \
    FUNCTION(ExecStatusType, PQresultStatus, (const PGresult *res), (res)) \
    FUNCTION(char *, PQresultErrorMessage, (const PGresult *res), (res)) \
    FUNCTION(char *, PQresultErrorField, (const PGresult *res, int fieldcode), (res, fieldcode)) \
    FUNCTION(char *, PQcmdStatus, (PGresult *res), (res)) \
    FUNCTION(char *, PQcmdTuples, (PGresult *res), (res)) \
    FUNCTION(int, PQntuples, (const PGresult *res), (res)) \
    FUNCTION(int, PQnfields, (const PGresult *res), (res)) \
    FUNCTION(char *, PQfname, (const PGresult *res, int field), (res, field)) \
    FUNCTION(Oid, PQftype, (const PGresult *res, int field), (res, field)) \
    FUNCTION(char *, PQgetvalue, (const PGresult *res, int row, int field), (res, row, field)) \
    FUNCTION(int, PQgetlength, (const PGresult *res, int row, int field), (res, row, field)) \
    FUNCTION(int, PQgetisnull, (const PGresult *res, int row, int field), (res, row, field)) \
    VOID_FUNCTION(PQclear, (PGresult *res), (res))

static const char *const pq_symbols[] = { PQ_FUNCTIONS(RB_DYNLIB_NAME, RB_DYNLIB_VOID_NAME) NULL };

struct rb_dynlib rb_libpq = { RB_LIBPQ_SONAME, "libpq5", pq_symbols, NULL, "" };

#define FORWARD(type, name, params, args) RB_DYNLIB_FORWARD(&rb_libpq, type, name, params, args)
#define VOID_FORWARD(name, params, args) RB_DYNLIB_VOID_FORWARD(&rb_libpq, name, params, args)

PQ_FUNCTIONS(FORWARD, VOID_FORWARD)
