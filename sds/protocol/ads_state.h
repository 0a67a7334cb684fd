/* sds/protocol/ads_state.h — the xDS State-of-the-World state machine of one stream, as pure logic.
 *
 * The gRPC code (meshd/meshd_stream.c) decodes each DiscoveryRequest into an
 * ads_request, feeds it here, and asks ads_state_collect what to send given
 * the resources it currently has for the peer (an ads_view). Nothing here
 * does I/O, so every rule is unit-tested in isolation:
 *
 *  - Subscriptions per type: LDS and CDS are wildcard when the name list is
 *    empty or holds "*"; RDS, EDS and SDS are by name and an empty list
 *    unsubscribes. SDS names are authorised (sds_names.h) before anything
 *    changes; one foreign name refuses the whole request.
 *  - ACK: response_nonce equals the last nonce sent for the type, version_info
 *    equals the version sent, no error_detail. NACK: same nonce with
 *    error_detail; the rejected version and message are recorded and the same
 *    version is never sent again. A request carrying any other nonce is stale
 *    and ignored entirely (as Envoy and go-control-plane do).
 *  - At most one response per type awaits its ACK/NACK (go-control-plane's
 *    rule): a config change while one is outstanding is coalesced and sent
 *    when the answer arrives, so a slow client sees only the newest version.
 *  - A response is sent for a subscribed type when nothing was sent yet on
 *    the stream or when the version of what the client should have (the
 *    subscribed subset) differs from the last version sent. Versions are a
 *    hash of the subset's (name, resource version) pairs.
 *  - Reconnects (Envoy semantics): the first request for a type on a stream
 *    carries no nonce and, from a client that held config before, the
 *    version_info it last accepted. When that equals the version of the
 *    subset it asks for now, nothing is sent: the type counts as sent and
 *    ACKed at that version (an ads_send with resumed set tells the caller, so
 *    it records the ACK without writing anything). Because the version hashes
 *    the (name, version) pairs of exactly what the client would receive, an
 *    equal version means the client holds those very resources, whatever
 *    names it asked for before. Any other version_info gets a response.
 *    Only before the type's first response on the stream: a client that
 *    unsubscribed dropped the resources, so its re-subscription is answered
 *    even at the same version. The caller sets no_resume for clients that
 *    need a response to count the stream as up (today's mesh-sidecar marks
 *    itself connected, and resets its reconnect backoff, on the first
 *    response only).
 *  - Send order when several types changed: SDS, CDS, EDS, LDS, RDS (secrets
 *    and clusters before the listeners and routes that refer to them). */
#ifndef MESH_SDS_PROTOCOL_ADS_STATE_H
#define MESH_SDS_PROTOCOL_ADS_STATE_H

#include <stddef.h>

#include "common/error.h"
#include "sds/compiler/xds_snapshot.h"

/* Stream slots, in push order. */
enum ads_type { ADS_T_SDS = 0, ADS_T_CDS, ADS_T_EDS, ADS_T_LDS, ADS_T_RDS, ADS_T_COUNT };

#define ADS_VERSION_MAX 17   /* 16 hex chars + NUL */
#define ADS_NONCE_MAX   48

/* Type URL of a slot, its short name ("SDS", "CDS", ...). */
const char *ads_type_url(enum ads_type t);
const char *ads_type_name(enum ads_type t);
/* Parses a full type URL or a short name ("lds", "LDS"). -1 if unknown. */
int ads_type_parse(const char *s, enum ads_type *out);

/* One decoded DiscoveryRequest (strings borrowed from the caller). */
typedef struct ads_request {
    const char *type_url;
    const char *version_info;     /* "" if absent */
    const char *response_nonce;   /* "" if absent */
    const char *const *names;
    size_t n_names;
    int has_error;                /* error_detail present: a NACK */
    const char *error_message;
} ads_request;

enum ads_req_kind {
    ADS_REQ_SUBSCRIBE = 0,  /* first request for the type on this stream */
    ADS_REQ_UPDATE,         /* new request (no nonce) or nonce matched with another version */
    ADS_REQ_ACK,
    ADS_REQ_NACK,
    ADS_REQ_STALE,          /* nonce is not the last one sent: ignored */
    ADS_REQ_UNKNOWN_TYPE,   /* type_url we do not serve: ignored */
    ADS_REQ_DENIED,         /* an SDS name the caller may not read: close the stream */
};

const char *ads_req_kind_name(enum ads_req_kind k);

typedef struct ads_type_state {
    int subscribed;                 /* a request for the type arrived and not unsubscribed */
    int wildcard;
    char **names;                   /* sorted, unique (by-name subscription) */
    size_t n_names;
    int sent;                       /* a response went out since (re)subscription */
    int awaiting;                   /* that response awaits ACK/NACK */
    char sent_version[ADS_VERSION_MAX];
    char sent_nonce[ADS_NONCE_MAX];
    char acked_version[ADS_VERSION_MAX];
    char nack_version[ADS_VERSION_MAX];
    char *nack_error;               /* NULL if no NACK yet */
    int ever_sent;                  /* a response (or resume) of this type on this stream,
                                     * unsubscribes included */
    char client_version[ADS_VERSION_MAX]; /* version_info of a no-nonce request before any
                                     * response on this stream: what the client holds
                                     * ("" = nothing, or not one of our versions) */
} ads_type_state;

typedef struct ads_state {
    char peer_id[512];              /* SPIFFE ID proved by the peer's certificate */
    char trust_domain[256];
    int no_resume;                  /* answer every first request (see the reconnect rule) */
    ads_type_state types[ADS_T_COUNT];
} ads_state;

typedef struct ads_req_result {
    enum ads_req_kind kind;
    enum ads_type type;             /* valid unless kind is ADS_REQ_UNKNOWN_TYPE */
    int subscription_changed;
    char denied_name[512];          /* ADS_REQ_DENIED: the first refused name */
} ads_req_result;

void ads_state_init(ads_state *s, const char *peer_id, const char *trust_domain);
void ads_state_free(ads_state *s);

/* Applies one request. Returns MESH_OK (the classification is in *out, even
 * for stale/unknown/denied requests) or MESH_ENOMEM. For ADS_REQ_DENIED err
 * holds the message to put in the PERMISSION_DENIED status. */
int ads_state_on_request(ads_state *s, const ads_request *req, ads_req_result *out,
                         mesh_err *err);

/* The resources the server has for this peer now, per slot. A NULL set means
 * "not known yet" (nothing is sent for that type until it is). Items must be
 * sorted by name (xds_snapshot keeps them so). */
typedef struct ads_view {
    const xds_type_set *sets[ADS_T_COUNT];
} ads_view;

/* One response to send. items point into the view passed to collect.
 * resumed: the client already holds exactly this version (it said so on
 * reconnect): send nothing, record it as ACKed; nonce is "". */
typedef struct ads_send {
    enum ads_type type;
    char version[ADS_VERSION_MAX];
    char nonce[ADS_NONCE_MAX];
    const xds_resource **items;
    size_t n;
    int resumed;
} ads_send;

/* Fills buf with a nonce unique within the process. */
typedef void (*ads_nonce_fn)(void *ctx, char *buf, size_t len);

/* Decides what to send now (at most one response per slot, in push order),
 * records each as sent and awaiting its ACK (resumed ones as sent and ACKed). out must hold ADS_T_COUNT
 * entries; release them with ads_send_free. */
int ads_state_collect(ads_state *s, const ads_view *v, ads_nonce_fn nonce, void *nonce_ctx,
                      ads_send out[ADS_T_COUNT], size_t *n_out, mesh_err *err);
void ads_send_free(ads_send *sends, size_t n);

/* Version string of a subset of a type set (what collect would send). */
void ads_subset_version(const xds_resource *const *items, size_t n,
                        char out[ADS_VERSION_MAX]);

#endif
