// OpenSSL's libcrypto, for SHA-256 (corpus manifests, checkpoint checksums).
#include <openssl/evp.h>
#include <openssl/sha.h>
