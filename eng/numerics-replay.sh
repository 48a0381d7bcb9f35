#!/usr/bin/env bash
# Replays the default study's 10-scene seed-0 cross-entropy stage (../shared/reference/zen3's config) in portable
# numerics and compares its per-step records with the trajectory this kit recorded in portable mode
# (docs/numerics/portable-xeon-avx512) and with the Zen 3 reference (made natively on an AVX2-only AMD CPU).
# Portable numerics promise the recorded trajectory on every CPU. On the CPU that recorded it a difference is a
# regression of the kit and fails; on another CPU it is the cross-machine finding this check exists for: it is printed
# as such (and the records kept in TestResults/numerics-replay/) for docs/numerics.md, not hidden, but does not fail the
# build that the rest of CI checks. See docs/numerics.md, "The replay".
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
stage=ce_r18w0.25-os8-small_fmscenes-n10_crop64_b8_300st_lr0.1_s0_34113e
reference=$repo/../shared/reference/zen3/$stage
recorded=$repo/docs/numerics/portable-xeon-avx512
[[ -f $reference/config.json ]] || { echo "numerics-replay: $reference/config.json not found (../shared beside the clone)"; exit 1; }
out=$repo/TestResults/numerics-replay
rm -rf "$out"; mkdir -p "$out"
(cd "$out" && CONTRASTSEG_NUMERICS=portable dotnet fsi "$repo/scripts/train.fsx" -- --config "$reference/config.json" > train.log 2>&1) \
  || { echo "numerics-replay: training failed"; tail -20 "$out/train.log"; exit 1; }
python3 - "$out" "$recorded" "$reference" "$stage" <<'PY'
import glob, json, os, sys
out, recorded, reference, stage = sys.argv[1:]
def records(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    return [{k: v for k, v in r.items() if k not in ("time", "seconds")} for r in rows if r.get("kind") in ("train", "val")]
metrics = glob.glob(os.path.join(out, "runs", "*", "*", "metrics.jsonl"))
if len(metrics) != 1: sys.exit(f"numerics-replay: expected one metrics.jsonl under {out}/runs, found {len(metrics)}")
provenance = json.loads(open(os.path.join(os.path.dirname(metrics[0]), "provenance.jsonl")).readline())["provenance"]
mine = records(metrics[0])
with open(os.path.join(out, "losses.jsonl"), "w") as f:
    for r in mine: f.write(json.dumps(r) + "\n")
def compare(name, path):
    theirs = records(path)
    for a, b in zip(mine, theirs):
        if a != b: return f"{name}: DIFFERS from step {a.get('step')} ({json.dumps(a)} vs {json.dumps(b)})"
    if len(mine) != len(theirs): return f"{name}: DIFFERS in length ({len(mine)} vs {len(theirs)} records)"
    return f"{name}: identical ({len(mine)} records)"
recorded_cpu = json.loads(open(os.path.join(recorded, "provenance.jsonl")).readline())["provenance"]["Cpu"]
here = provenance.get("Cpu", "unknown CPU")
print(f"numerics-replay on {here}, {provenance.get('NumericsClass', '?')}")
own = compare("the kit's recorded portable trajectory (" + recorded_cpu + ")", os.path.join(recorded, stage, "losses.jsonl"))
print("numerics-replay: " + own)
print("numerics-replay: " + compare("the Zen 3 reference (native, AVX2-only AMD)", os.path.join(reference, "losses.jsonl")))
if "DIFFERS" in own:
    if here == recorded_cpu:
        sys.exit("numerics-replay: FAILED: portable numerics changed on the CPU that recorded the trajectory (a regression of the kit)")
    print(f"numerics-replay: CROSS-MACHINE FINDING: portable numerics on {here} differ from {recorded_cpu}; records in {out}/losses.jsonl")
PY
