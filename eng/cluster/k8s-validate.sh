#!/usr/bin/env bash
# eng/cluster/k8s-indexed-job.yaml against the Kubernetes API schema, offline (no cluster, no API server): renders it
# as its header does, validates every object (eng/cluster/k8s-validate/validate.mjs: the schemas of the npm package
# kubernetes-models, plus unknown fields through tsc), and checks that the validator refuses a misspelt field and a
# string where an integer goes. Needs node and npm; the pinned packages install once from the npm registry.
#
#   bash eng/cluster/k8s-validate.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=eng/cluster/k8s-validate

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  command -v apt-get >/dev/null || { echo "k8s-validate: needs node and npm" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null; }
fi
if [[ ! -d $dir/node_modules/kubernetes-models ]]; then
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || { echo "k8s-validate: npm ci failed in $dir" >&2; exit 1; }
fi
echo "k8s-validate: node $(node --version), kubernetes-models $(node -p "require('./$dir/node_modules/kubernetes-models/package.json').version"), typescript $(node -p "require('./$dir/node_modules/typescript/package.json').version")"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# shellcheck disable=SC2016 # envsubst takes the variable names literally
render() { WAVE=$1 CELLS=$2 envsubst '$WAVE $CELLS' < eng/cluster/k8s-indexed-job.yaml; }
render 1 8 > "$out/wave-1.yaml"   # a wave of 8 cells
render 0 0 > "$out/wave-0.yaml"   # what the header renders for the storage and the report
node "$dir/validate.mjs" "$out/wave-1.yaml" "$out/wave-0.yaml"

# The validator itself: each of these must be refused.
sed 's/completionMode: Indexed/completionMod: Indexed/' "$out/wave-1.yaml" > "$out/misspelt.yaml"
sed 's/parallelism: 8 /parallelism: "8" /' "$out/wave-1.yaml" > "$out/string.yaml"
for bad in misspelt string; do
  cmp -s "$out/$bad.yaml" "$out/wave-1.yaml" && { echo "k8s-validate: the $bad control changed nothing" >&2; exit 1; }
  if node "$dir/validate.mjs" "$out/$bad.yaml" > "$out/$bad.log"; then
    echo "k8s-validate: the validator accepted the $bad control" >&2; exit 1
  fi
  echo "k8s-validate: control ($bad) refused: $(grep -m1 INVALID "$out/$bad.log" | sed "s|$out/||")"
done
echo "k8s-validate: passed"
