/* sds/protocol/ads_delta_state.h — the Incremental (Delta) xDS state machine of one stream, as pure logic.
 *
 * The Delta twin of sds/protocol/ads_state.h, for DeltaAggregatedResources and
 * DeltaSecrets. The gRPC code (meshd/meshd_delta.c) decodes each
 * DeltaDiscoveryRequest into an ads_delta_request, feeds it here, and asks
 * ads_delta_collect what to send given the resources it has for the peer (the
 * same ads_view the SotW machine uses). Nothing here does I/O. The rules
 * follow Envoy's xDS protocol document, section "Incremental xDS":
 *
 *  - Subscriptions per type: resource_names_subscribe adds names,
 *    resource_names_unsubscribe removes them; "*" in either turns the wildcard
 *    on or off. LDS and CDS whose first request on the stream subscribes and
 *    unsubscribes nothing are wildcard (legacy wildcard); a later explicit name
 *    is added beside it. RDS, EDS and SDS are by name. SDS names are authorised
 *    (sds_names.h) before anything changes; one foreign name refuses the whole
 *    request.
 *  - Per-resource versions: for every name the client is believed to hold, the
 *    state keeps the version it was last sent (or reported in
 *    initial_resource_versions on the first request of the type). A response
 *    carries only resources whose version differs from that, plus
 *    removed_resources for names the client holds (or explicitly asked for)
 *    that no longer exist — the spec's "does not exist" signal. Subscribing to
 *    a name again resends it (the client may have forgotten it).
 *    Unsubscribing a name while the wildcard is on answers with that name in
 *    resources or removed_resources, so the client knows whether the
 *    wildcard still covers it.
 *  - The first request of a type on a stream, and a new wildcard
 *    subscription, is always answered, if need be with an empty response: the
 *    client (and proxy status) learn that the server processed it, and a
 *    reconnect whose initial_resource_versions are all current gets nothing
 *    but that empty answer.
 *  - ACK: response_nonce equals the nonce of the response awaiting its answer
 *    and no error_detail. NACK: same with error_detail: the system version and
 *    message are recorded and the rejected resource versions count as sent, so
 *    they are not sent again; the next different version of a resource is.
 *    A request with any other nonce is stale for ACK purposes, but its
 *    subscription changes are applied (the spec requires it).
 *  - At most one response per type awaits its ACK/NACK: changes made meanwhile
 *    are coalesced and the diff against the newest view goes out when the
 *    answer arrives.
 *  - system_version_info is ads_subset_version over the subscribed subset, the
 *    same content hash a SotW stream would report for it.
 *  - Send order when several types changed: SDS, CDS, EDS, LDS, RDS. */
#ifndef MESH_SDS_PROTOCOL_ADS_DELTA_STATE_H
#define MESH_SDS_PROTOCOL_ADS_DELTA_STATE_H

#include <stddef.h>

#include "common/error.h"
#include "sds/protocol/ads_state.h"

#define ADS_DELTA_MAX_NAMES 10000   /* explicit subscriptions per type and stream */

/* One decoded DeltaDiscoveryRequest (strings borrowed from the caller).
 * initial_resource_versions is given as two parallel arrays. */
typedef struct ads_delta_request {
    const char *type_url;
    const char *const *subscribe;
    size_t n_subscribe;
    const char *const *unsubscribe;
    size_t n_unsubscribe;
    const char *const *initial_names;
    const char *const *initial_versions;
    size_t n_initial;
    const char *response_nonce;     /* "" if absent */
    int has_error;                  /* error_detail present: a NACK */
    const char *error_message;
} ads_delta_request;

/* What the client holds (as far as the server knows): name -> version.
 * version "" means "told that it does not exist"; ADS_DELTA_UNKNOWN means
 * "must be (re)sent whatever the version". */
typedef struct ads_delta_entry {
    char *name;
    char version[ADS_VERSION_MAX];
} ads_delta_entry;

#define ADS_DELTA_UNKNOWN "!"

typedef struct ads_delta_type {
    int seen;                       /* a request for the type arrived on this stream */
    int wildcard;
    int force_reply;                /* answer even when nothing differs */
    char **names;                   /* explicit subscriptions, sorted, unique */
    size_t n_names;
    ads_delta_entry *known;         /* sorted by name */
    size_t n_known;
    int sent;                       /* a response went out on this stream */
    int awaiting;                   /* that response awaits ACK/NACK */
    char sent_version[ADS_VERSION_MAX];
    char sent_nonce[ADS_NONCE_MAX];
    char acked_version[ADS_VERSION_MAX];
    char nack_version[ADS_VERSION_MAX];
    char *nack_error;               /* NULL if no NACK yet */
} ads_delta_type;

typedef struct ads_delta_state {
    char peer_id[512];              /* SPIFFE ID proved by the peer's certificate */
    char trust_domain[256];
    ads_delta_type types[ADS_T_COUNT];
} ads_delta_state;

void ads_delta_init(ads_delta_state *s, const char *peer_id, const char *trust_domain);
void ads_delta_free(ads_delta_state *s);

/* Applies one request. Returns MESH_OK with the classification in *out (also
 * for stale, unknown-type and denied requests; ADS_REQ_DENIED leaves the
 * state untouched and err holds the PERMISSION_DENIED message), MESH_EINVAL
 * when the subscription would exceed ADS_DELTA_MAX_NAMES (state untouched),
 * or MESH_ENOMEM. initial_resource_versions count only on the first request
 * of a type and only for names that request subscribes to. */
int ads_delta_on_request(ads_delta_state *s, const ads_delta_request *req, ads_req_result *out,
                         mesh_err *err);

/* One response to send: changed or new resources (pointing into the view
 * given to collect) and the names to remove (owned). */
typedef struct ads_delta_send {
    enum ads_type type;
    char version[ADS_VERSION_MAX];  /* system_version_info */
    char nonce[ADS_NONCE_MAX];
    const xds_resource **items;
    size_t n;
    char **removed;
    size_t n_removed;
} ads_delta_send;

/* Decides what to send now (at most one response per type, in push order)
 * and records each as sent and awaiting its ACK. out must hold ADS_T_COUNT
 * entries; release them with ads_delta_send_free. Each type is decided and
 * recorded as a whole: on MESH_ENOMEM the types already decided are in out
 * (send them), the type that failed is untouched and retried next time. */
int ads_delta_collect(ads_delta_state *s, const ads_view *v, ads_nonce_fn nonce, void *nonce_ctx,
                      ads_delta_send out[ADS_T_COUNT], size_t *n_out, mesh_err *err);
void ads_delta_send_free(ads_delta_send *sends, size_t n);

/* The version the server believes the client holds for name ("" if told it
 * does not exist), or NULL when it holds nothing under that name. */
const char *ads_delta_known_version(const ads_delta_state *s, enum ads_type t, const char *name);

#endif
