#!/usr/bin/env sh
# Fetch MovieLens-100k for benches/eval (PROTOCOL.md §11) and print the path of the file.
#
# The data is not in this repository (GroupLens terms: research use, no redistribution).
# The PyPI wheel recbole==1.2.1 ships it as recbole/dataset_example/ml-100k/ml-100k.inter
# (the original u.data with a header line); this script downloads that wheel with pip into
# a cache directory, extracts only that member and checks its sha256.
#
#   benches/eval/fetch_ml100k.sh            # prints e.g. ~/.cache/doppel/ml-100k/ml-100k.inter
#   DIR=/tmp/ml benches/eval/fetch_ml100k.sh
#
# Idempotent: when the file is already there with the right hash, nothing is downloaded.
# Needs python3 with pip; network access to PyPI on the first run only.
set -eu

DIR="${DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/doppel/ml-100k}"
PYTHON="${PYTHON:-python3}"
VERSION="1.2.1"
MEMBER="recbole/dataset_example/ml-100k/ml-100k.inter"
SHA256="4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"
OUT="$DIR/ml-100k.inter"

sha_of() {
    "$PYTHON" -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())' "$1"
}

if [ -f "$OUT" ] && [ "$(sha_of "$OUT")" = "$SHA256" ]; then
    echo "$OUT"
    exit 0
fi

mkdir -p "$DIR/wheel"
WHEEL="$DIR/wheel/recbole-$VERSION-py3-none-any.whl"
if [ ! -f "$WHEEL" ]; then
    echo "downloading recbole==$VERSION (wheel, no dependencies) into $DIR/wheel" >&2
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
        "recbole==$VERSION" -d "$DIR/wheel" >&2
fi

# extract the one member (a wheel is a zip) to a temporary name, check it, then rename
"$PYTHON" -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$WHEEL" "$MEMBER" "$OUT.part"

GOT="$(sha_of "$OUT.part")"
if [ "$GOT" != "$SHA256" ]; then
    rm -f "$OUT.part"
    echo "sha256 mismatch for $MEMBER in $WHEEL: got $GOT, expected $SHA256" >&2
    exit 1
fi
mv "$OUT.part" "$OUT"
echo "$OUT"
