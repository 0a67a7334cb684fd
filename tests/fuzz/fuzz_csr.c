/* tests/fuzz/fuzz_csr.c — libFuzzer target: the CA's CSR validator
 * (ca/ca_csr.c), which reads PEM straight from a CreateCertificate call.
 * An input that starts with "-----" is the PEM text as sent; any other is
 * DER, wrapped into a CERTIFICATE REQUEST block first, so that mutations
 * reach the ASN.1 and the checks behind it rather than the base64. Any
 * input: no crash, and a refusal always says why. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *as_pem(const uint8_t *data, size_t size)
{
    if (size >= 5 && memcmp(data, "-----", 5) == 0) {
        char *pem = malloc(size + 1);
        if (pem) {
            memcpy(pem, data, size);
            pem[size] = '\0';
        }
        return pem;
    }
    static const char head[] = "-----BEGIN CERTIFICATE REQUEST-----\n";
    static const char tail[] = "\n-----END CERTIFICATE REQUEST-----\n";
    size_t b64 = 4 * ((size + 2) / 3) + 1;
    char *pem = malloc(sizeof head + b64 + sizeof tail);
    if (!pem)
        return NULL;
    memcpy(pem, head, sizeof head - 1);
    int n = EVP_EncodeBlock((unsigned char *)pem + sizeof head - 1, data, (int)size);
    memcpy(pem + sizeof head - 1 + n, tail, sizeof tail);
    return pem;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *pem = as_pem(data, size);
    if (!pem)
        return 0;
    mesh_err err = {0};
    if (ca_csr_check(pem, "example.org", NULL, &err) != MESH_OK && !err.msg[0])
        abort();
    mesh_err err2 = {0};
    if (ca_csr_check(pem, "example.org", "spiffe://example.org/ns/default/sa/web", &err2) !=
            MESH_OK &&
        !err2.msg[0])
        abort();
    free(pem);
    return 0;
}
