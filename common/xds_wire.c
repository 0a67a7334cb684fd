/* common/xds_wire.c — resource type URL <-> short name (see xds_wire.h). */
#include "common/xds_wire.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

const xds_wire_type xds_wire_types[XDS_WIRE_RESOURCE_TYPES] = {
    {XDS_TYPE_URL_SECRET, "SDS"},   {XDS_TYPE_URL_CLUSTER, "CDS"},
    {XDS_TYPE_URL_ENDPOINT, "EDS"}, {XDS_TYPE_URL_LISTENER, "LDS"},
    {XDS_TYPE_URL_ROUTE, "RDS"},
};

const char *xds_wire_short_name(const char *type_url)
{
    if (!type_url)
        return NULL;
    for (size_t i = 0; i < XDS_WIRE_RESOURCE_TYPES; i++)
        if (strcmp(type_url, xds_wire_types[i].type_url) == 0)
            return xds_wire_types[i].short_name;
    return NULL;
}

const char *xds_wire_type_url(const char *short_name)
{
    if (!short_name)
        return NULL;
    for (size_t i = 0; i < XDS_WIRE_RESOURCE_TYPES; i++)
        if (strcasecmp(short_name, xds_wire_types[i].short_name) == 0)
            return xds_wire_types[i].type_url;
    return NULL;
}
