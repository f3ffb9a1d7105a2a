#!/bin/sh
# Vendor the console's browser libraries from the npm registry into web/static/console
# (served by every node; no CDN). `make web-assets` runs this; the result is committed.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(sed -n 's/.*"canonicalize": "\(.*\)".*/\1/p' "$here/web/package.json")
(cd "$work" && npm pack --silent "canonicalize@$version" >/dev/null && tar xzf "canonicalize-$version.tgz")
out="$here/web/static/console/canonicalize.js"
{
  echo "/* canonicalize $version (RFC 8785 JSON Canonicalization Scheme), from the npm registry:"
  echo "   npm pack canonicalize@$version, lib/canonicalize.js, MIT licence (package/LICENSE)."
  echo "   Wrapped as a browser global by devtools/vendor_web.sh; do not edit. */"
  echo "(function (module) {"
  cat "$work/package/lib/canonicalize.js"
  echo "window.canonicalize = module.exports;"
  echo "})({ exports: {} });"
} > "$out"
echo "wrote $out"
