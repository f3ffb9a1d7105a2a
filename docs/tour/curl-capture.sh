#!/bin/sh
# POST an EPCIS document to /capture as a plain EPCIS client: curl, with the request
# signed (RFC 9421, Ed25519) by openssl. No ParkTrace software is needed.
#
#   docs/tour/curl-capture.sh URL KEY.pem CERT.pem DOCUMENT.jsonld
#   docs/tour/curl-capture.sh http://127.0.0.1:8601 \
#       var/demo/consortium/keys/orgs/ganzhou-mask-factory/users/admin.key \
#       var/demo/consortium/certs/orgs/ganzhou-mask-factory/users/admin.pem doc.jsonld
set -eu
url=$1 key=$2 cert=$3 doc=$4
authority=${url#*://}; authority=${authority%%/*}
keyid=$(openssl x509 -in "$cert" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
digest="sha-256=:$(openssl dgst -sha256 -binary "$doc" | openssl base64 -A):"
created=$(date +%s)
nonce=$(openssl rand -hex 16)
params="(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-type\" \"content-digest\");created=$created;keyid=\"$keyid\";alg=\"ed25519\";nonce=\"$nonce\""
base=$(mktemp)
trap 'rm -f "$base"' EXIT
printf '"@method": POST\n"@authority": %s\n"@path": /capture\n"@query": ?\n"content-type": application/ld+json\n"content-digest": %s\n"@signature-params": %s' \
    "$authority" "$digest" "$params" > "$base"
signature=$(openssl pkeyutl -sign -rawin -inkey "$key" -in "$base" | openssl base64 -A)
curl -sS -X POST "$url/capture" \
    -H "Content-Type: application/ld+json" \
    -H "Content-Digest: $digest" \
    -H "Signature-Input: pt=$params" \
    -H "Signature: pt=:$signature:" \
    --data-binary "@$doc"
