/* tests/unit/test_sidecar_util.h — helpers for the sidecar tests: a test CA
 * that issues X.509-SVIDs with chosen validity, an in-process HTTP/TCP echo
 * backend on its own thread, and a blocking HTTP/1.1 client. */
#ifndef MESH_TESTS_SIDECAR_UTIL_H
#define MESH_TESTS_SIDECAR_UTIL_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tsc_ca {
    EVP_PKEY *key;
    X509 *cert;
} tsc_ca;

tsc_ca *tsc_ca_new(const char *cn);
void tsc_ca_free(tsc_ca *ca);
char *tsc_ca_pem(const tsc_ca *ca);

/* A leaf for `uri` (NULL: no SAN; "a|b": two URI SANs) valid [nb, na] (unix
 * seconds), with a fresh P-256 key. Returns 0; both outputs malloc'd PEM. */
int tsc_leaf(tsc_ca *ca, const char *uri, int64_t nb, int64_t na, char **chain_pem,
             char **key_pem);
/* A v2 CRL signed by ca listing the leaves in revoked_pems (reason code
 * `reason`, 0 = none) with cRLNumber `number` (-1 = no extension). PEM. */
char *tsc_crl(tsc_ca *ca, const char *const *revoked_pems, size_t n, int reason, int64_t number,
              int64_t this_update, int64_t next_update);
/* Signs a CSR's public key into a leaf with the CSR's URI SAN. */
char *tsc_sign_csr(tsc_ca *ca, const char *csr_pem, int64_t nb, int64_t na);

/* mkdtemp("/tmp/meshd-test-XXXXXX"); malloc'd path. */
char *tsc_tmpdir(void);

/* Backend: HTTP answers {"app":NAME,"method":..,"path":..,"xfcc":..} with
 * 200, /status/NNN, /delay/MS; /headers adds "hdrs":"name=value;..." (every
 * field line it got); tcp_echo echoes bytes. */
typedef struct tsc_backend tsc_backend;
tsc_backend *tsc_backend_start(const char *name, bool tcp_echo);
int tsc_backend_port(const tsc_backend *b);
int tsc_backend_requests(const tsc_backend *b);
void tsc_backend_stop(tsc_backend *b);

/* Blocking client. */
int tsc_connect(int port);          /* fd or -1; 5 s send/recv timeouts */
int tsc_send(int fd, const char *data);
/* Reads one response; returns the status (0 on error/EOF); body copied. */
int tsc_read_response(int fd, char *body, size_t body_len);
/* Same; *total = body bytes received (the copy is truncated to body_len). */
int tsc_read_response_total(int fd, char *body, size_t body_len, size_t *total);
/* One request on a fresh connection; returns the status. */
int tsc_http_get(int port, const char *host, const char *path, const char *extra_headers,
                 char *body, size_t body_len);
/* True if the peer closed fd (read returns 0 or an error) within ms. */
bool tsc_wait_closed(int fd, int ms);

#endif
