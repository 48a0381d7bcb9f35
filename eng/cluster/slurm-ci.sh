#!/usr/bin/env bash
# The Slurm job arrays of eng/cluster/slurm-array.sh on a real Slurm (a one-node cluster, eng/cluster/local-slurm.sh),
# submitted as docs/gpu-and-cluster.md tells a user, then the faults a cluster brings. CI runs `all`; as root, from a built checkout:
#
#   bash eng/cluster/slurm-ci.sh [all | grid | kill | node-loss | bad-cell ...]
#
#   grid       the quick profile through slurm-array.sh; its rows, results.csv and feature space equal a local run's bit
#              for bit. Meanwhile the report job runs early, with a wave-2 task suspended mid-training (it names the
#              missing cell; no row is read half-written), then after the last wave, then once more (same tables).
#   kill       scancel of one array task, then kill -9 of its training: each resubmission reuses the finished cell and
#              resumes the killed one from its last checkpoint; its row equals the uninterrupted one.
#   node-loss  slurmd stopped while a wave-1 task trains a stage that wave 2 shares: the controller takes the node for
#              lost and requeues the task, which resumes once the node is back; the stage is never trained twice at once.
#   bad-cell   a corrupt labelled-subset file that only one cell reads: that cell fails with a message naming the file,
#              afterok cancels wave 2 and the report; after the fix a resubmission trains only what is missing.
#
# Numbers: CONTRASTSEG_THREADS=1 for the local reference, --cpus-per-task=1 (so 1 thread) for the tasks. Everything goes
# to SLURM_CI_DIR (default TestResults/slurm); the daemons stop at the end whatever happened.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=$(realpath -m "${SLURM_CI_DIR:-TestResults/slurm}")
CASES=("$@")
((${#CASES[@]})) || CASES=(all)
[[ ${CASES[*]} == all ]] && CASES=(grid kill node-loss bad-cell)
QUICK=(--profile quick)
export CONTRASTSEG_THREADS=1
T0=$SECONDS

say() { echo "[slurm-ci $((SECONDS - T0)) s] $*"; }
die() { echo "[slurm-ci $((SECONDS - T0)) s] FAILED: $*" >&2; exit 1; }

cleanup() {
  local status=$?
  if ((status != 0)); then
    echo "[slurm-ci] failed (exit $status): the daemons' logs end with" >&2
    tail -n 15 "${LOCAL_SLURM_DIR:-/tmp/contrastseg-slurm}"/log/*.log >&2 || true
  fi
  bash eng/cluster/local-slurm.sh stop || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ -s src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll ]] || die "build first: dotnet build -c Release"
bash eng/cluster/local-slurm.sh start || die "could not start the local Slurm"
export SLURM_CONF=${LOCAL_SLURM_DIR:-/tmp/contrastseg-slurm}/slurm.conf

# ---------------------------------------------------------------------------------------------------- helpers

# submit <case folder> <grid options...>: the documented command; sets WAVES (array job ids, wave by wave) and REPORT.
submit() {
  local dir=$1 out; shift
  mkdir -p "$dir/logs"
  out=$(RUNS=$dir/runs RESULTS=$dir/results GRID_OPTIONS="$*" \
        SUBMIT_OPTIONS="--cpus-per-task=1 --output=$dir/logs/slurm-%x-%A_%a.out" bash eng/cluster/slurm-array.sh) \
    || die "slurm-array.sh failed: $out"
  sed 's/^/    /' <<< "$out"
  mapfile -t WAVES < <(sed -n 's/^wave [0-9]*: .*array job \([0-9]*\)$/\1/p' <<< "$out")
  REPORT=$(sed -n 's/^report: job \([0-9]*\)$/\1/p' <<< "$out")
  ((${#WAVES[@]})) && [[ -n $REPORT ]] || die "no job ids in slurm-array.sh's output"
}

# One line per record of a job (an array: one per task): "<task> <state> <reason> <restarts>".
records() {
  scontrol -o show job "$1" 2>/dev/null | awk '{
    t = "-"; s = ""; r = ""; n = 0
    for (i = 1; i <= NF; i++) {
      split($i, kv, "=")
      if (kv[1] == "ArrayTaskId") t = kv[2]; else if (kv[1] == "JobState") s = kv[2]
      else if (kv[1] == "Reason") r = kv[2]; else if (kv[1] == "Restarts") n = kv[2]
    }
    print t, s, r, n }' | sort -n
}

# finish <job> [seconds]: waits until every record of the job has ended; prints them.
finish() {
  local job=$1 limit=${2:-900} start=$SECONDS
  while records "$job" | awk '$2 ~ /PENDING|RUNNING|REQUEUED|SUSPENDED|COMPLETING|CONFIGURING|RESIZING|REQUEUE_HOLD/ { busy = 1 } END { exit !busy }'; do
    ((SECONDS - start < limit)) || die "job $job still running after $limit s: $(records "$job" | tr '\n' ';')"
    sleep 2
  done
  say "job $job: $(records "$job" | awk '{ printf "%s%s %s", (NR > 1 ? "; " : ""), ($1 == "-" ? "" : "task " $1), $2; if ($2 != "COMPLETED" && $3 != "None") printf " (%s)", $3 }')"
}

# expect <job> <task or -> <state>
expect() {
  local got
  got=$(records "$1" | awk -v t="$2" '$1 == t { print $2 }')
  [[ $got == "$3" ]] || die "job $1 task $2: $3 expected, got '${got}' ($(records "$1" | tr '\n' ';'))"
}

# The log of task k of an array job, and the key of the cell on line k+1 of a wave's list.
log_of() { echo "$1/logs/slurm-contrastseg-$2_$3.out"; }
task_of() { local n; n=$(grep -nx -- "$3" "$1/results/keys-wave-$2.txt" | cut -d: -f1); [[ -n $n ]] || die "$3 is not in wave $2"; echo $((n - 1)); }

# wait_for <file> <extended regex> [seconds]: until a line matches.
wait_for() {
  local limit=${3:-300} start=$SECONDS
  until [[ -f $1 ]] && grep -Eq -- "$2" "$1"; do
    ((SECONDS - start < limit)) || die "no line /$2/ in $1 after $limit s"
    sleep 0.2
  done
}

# The training process of a task: the holder of a run folder's lock whose environment is that task's.
trainer_of() {
  local job=$1 task=$2 holder pid env
  for holder in "$3"/runs/*/run.lock.holder; do
    pid=$(sed -n 's/^process \([0-9]*\) .*/\1/p' "$holder" 2>/dev/null) || continue
    env=$( { tr '\0' '\n' < "/proc/$pid/environ"; } 2>/dev/null) || continue
    grep -qx "SLURM_ARRAY_JOB_ID=$job" <<< "$env" && grep -qx "SLURM_ARRAY_TASK_ID=$task" <<< "$env" && { echo "$pid"; return 0; }
  done
  return 1
}
wait_trainer() {
  local start=$SECONDS pid
  until pid=$(trainer_of "$@"); do ((SECONDS - start < 120)) || die "no training process of $1_$2"; sleep 0.2; done
  echo "$pid"
}

# compare <results> [compare-results.fsx options]: bit for bit against the local reference run.
compare() { dotnet fsi eng/cluster/compare-results.fsx -- "$REFERENCE" "$@" || die "$1 differs from the local run"; }

# Every file under the given folders with size and modification time (what "untouched" means).
snapshot() { find "$@" -type f -printf '%p %s %T@\n' | sort; }
# The run folders of a cell's stages, as its row lists them.
stages_of() { sed -n '/"Stages"/,/]/p' "$1/rows/$2.json" | grep -o '"/[^"]*"' | tr -d '"'; }

# ---------------------------------------------------------------------------------------------------- cases

# The local run every case is compared with: the quick profile, one libtorch thread per cell.
# SLURM_CI_REFERENCE=<results folder> reuses one (a run of this code, CONTRASTSEG_THREADS=1) while iterating on a case.
REFERENCE=${SLURM_CI_REFERENCE:-$WORK/reference/results}
reference() {
  if [[ -n ${SLURM_CI_REFERENCE:-} ]]; then
    [[ -s $REFERENCE/results.csv ]] || die "SLURM_CI_REFERENCE=$REFERENCE holds no results.csv"
    say "reference: $REFERENCE (SLURM_CI_REFERENCE)"; return 0
  fi
  local start=$SECONDS
  rm -rf "$WORK/reference"; mkdir -p "$WORK/reference"
  say "reference: dotnet fsi scripts/ablations.fsx -- ${QUICK[*]} (CONTRASTSEG_THREADS=1, local)"
  dotnet fsi scripts/ablations.fsx -- "${QUICK[@]}" --runs "$WORK/reference/runs" --output "$WORK/reference/results" \
    > "$WORK/reference/ablations.out" 2>&1 || { tail -20 "$WORK/reference/ablations.out"; die "the local reference run failed"; }
  rm -rf "$WORK/reference/runs"   # the cases compare with its rows and report only
  say "reference: done in $((SECONDS - start)) s"
}

case_grid() {
  local dir=$WORK/grid start=$SECONDS
  rm -rf "$dir"
  say "grid: bash eng/cluster/slurm-array.sh with GRID_OPTIONS='${QUICK[*]}'"
  submit "$dir" "${QUICK[@]}"
  # The straggler: a wave-2 cell that trains stages of its own (pseudo-labels, then students), suspended mid-training.
  local wave2=${WAVES[1]} straggler=semi-supervised.contrastive-finetune.labelled-8-pseudo-on.s0 last early
  last=$(task_of "$dir" 2 "$straggler")
  wait_for "$(log_of "$dir" "$wave2" "$last")" '^\[[A-Za-z]+\] 3/[0-9]+ ' 900
  scontrol suspend "${wave2}_$last"
  say "grid: task ${wave2}_$last ($straggler) suspended mid-training"
  local others wait=$SECONDS
  while others=$(records "$wave2" | awk -v l="$last" '$1 != l && $2 != "COMPLETED"' | wc -l); ((others > 0)); do
    ((SECONDS - wait < 900)) || die "wave 2 did not finish beside the suspended task: $(records "$wave2" | tr '\n' ';')"; sleep 2
  done
  early=$(RUNS=$dir/runs RESULTS=$dir/results GRID_OPTIONS="${QUICK[*]}" \
          sbatch --parsable --cpus-per-task=1 --output="$dir/logs/early-report-%j.out" eng/cluster/slurm-array.sh report)
  finish "$early" 300
  expect "$early" - COMPLETED
  grep -F "[report] 1 of 15 cells lack a current row and are left out: $straggler (no row)" "$dir/logs/early-report-$early.out" \
    || die "the early report does not name the straggler's cell"
  grep -q '^- \*\*incomplete\*\*' "$dir/results/results.md" || die "the early results.md does not say it is incomplete"
  say "grid: early report (job $early) names the missing cell: $straggler"
  scontrol resume "${wave2}_$last"
  finish "${WAVES[0]}"; finish "$wave2"; finish "$REPORT"
  for job in "${WAVES[@]}" "$REPORT"; do
    records "$job" | awk '$2 != "COMPLETED" { exit 1 }' || die "job $job: not every task completed"
  done
  grep -q '^- every cell of the grid (15) has its row' "$dir/results/results.md" || die "results.md after the last wave is not complete"
  compare "$dir/results" --tables
  cp "$dir/results/results.csv" "$dir/results/feature-space.json" "$dir/logs/"
  # The report once more: the same tables.
  local again
  again=$(RUNS=$dir/runs RESULTS=$dir/results GRID_OPTIONS="${QUICK[*]}" \
          sbatch --parsable --cpus-per-task=1 --output="$dir/logs/report-again-%j.out" eng/cluster/slurm-array.sh report)
  finish "$again" 300
  expect "$again" - COMPLETED
  cmp "$dir/logs/results.csv" "$dir/results/results.csv" && cmp "$dir/logs/feature-space.json" "$dir/results/feature-space.json" \
    || die "the report run twice wrote other tables"
  local bad
  bad=$(find "$dir/results/rows" -name '*.bad-*' -o -name '*.tmp' | wc -l)
  ((bad == 0)) || die "rows set aside as damaged or left half-written: $(ls "$dir/results/rows")"
  PASSED="grid"; say "grid: PASSED in $((SECONDS - start)) s: 15 cells in 2 waves and the report on Slurm, bit for bit the local run's; report run early, after the last wave and again"
}

case_kill() {
  local dir=$WORK/kill start=$SECONDS
  local x=label-efficiency.cross-entropy.labelled-8.s0 y=label-efficiency.cross-entropy.labelled-40.s0
  rm -rf "$dir"
  say "kill: cells $x (killed) and $y"
  submit "$dir" "${QUICK[@]}" --cells "$x" "$y"
  local k; k=$(task_of "$dir" 1 "$x")
  local j=${WAVES[0]} log
  log=$(log_of "$dir" "$j" "$k")
  wait_for "$log" '^\[CrossEntropy\] 12/30 '   # past the checkpoint of step 10's validation
  scancel "${j}_$k"
  finish "$j"; finish "$REPORT"
  expect "$j" "$k" CANCELLED; expect "$REPORT" - CANCELLED
  local stopped
  stopped=$(sed -n 's/.*stopped by signal 15 after step \([0-9]*\)\/30.*/\1/p' "$log" | head -1)
  [[ -n $stopped ]] || die "scancel: the trainer did not checkpoint and stop ($log)"
  say "kill: scancel ${j}_$k: checkpoint at step $stopped; the report job was cancelled (afterok)"

  submit "$dir" "${QUICK[@]}" --cells "$x" "$y"
  j=${WAVES[0]}; log=$(log_of "$dir" "$j" "$k")
  wait_for "$log" "resuming at step $stopped/30 "
  wait_for "$log" "^\[CrossEntropy\] $((stopped + 3))/30 "
  local pid; pid=$(wait_trainer "$j" "$k" "$dir")
  kill -9 "$pid"
  say "kill: kill -9 of ${j}_$k's training process $pid after step $((stopped + 3))"
  finish "$j"; finish "$REPORT"
  expect "$j" "$k" FAILED; expect "$REPORT" - CANCELLED
  grep -q "1 reused from" "$(log_of "$dir" "$j" $((1 - k)))" || die "the finished cell $y was not reused"

  submit "$dir" "${QUICK[@]}" --cells "$x" "$y"
  j=${WAVES[0]}; log=$(log_of "$dir" "$j" "$k")
  finish "$j"; finish "$REPORT"
  expect "$j" "$k" COMPLETED; expect "$REPORT" - COMPLETED
  grep -q "1 reused from" "$(log_of "$dir" "$j" $((1 - k)))" || die "the finished cell $y was not reused"
  local resumed; resumed=$(sed -n 's/.*resuming at step \([0-9]*\)\/30 .*/\1/p' "$log")
  [[ -n $resumed ]] || die "after kill -9 the cell did not resume from a checkpoint ($log)"
  compare "$dir/results" --cells "$x" "$y"
  PASSED="kill"; say "kill: PASSED in $((SECONDS - start)) s: resumed at step $stopped after scancel, at step $resumed after kill -9; $y reused twice; rows equal the uninterrupted run's"
}

case_node_loss() {
  local dir=$WORK/node-loss start=$SECONDS
  local a=label-efficiency.contrastive-finetune.labelled-8.s0 b=distortions.contrastive-finetune.distortions-on.s0
  rm -rf "$dir"
  say "node-loss: $a (wave 1) trains the stages $b (wave 2) reuses"
  submit "$dir" "${QUICK[@]}" --cells "$a" "$b"
  local j=${WAVES[0]} log pid
  log=$(log_of "$dir" "$j" 0)
  wait_for "$log" '^\[FineTune\] 2/20 '
  pid=$(wait_trainer "$j" 0 "$dir")
  wait_for "$log" '^\[FineTune\] 12/20 '
  # A quick cell would end before the controller misses the node (about 30 s): its training hangs with the node.
  kill -STOP "$pid"
  bash eng/cluster/local-slurm.sh stop-node
  local lost=$SECONDS
  until records "$j" | awk '$2 == "PENDING" && $4 >= 1 { found = 1 } END { exit !found }'; do
    ((SECONDS - lost < 180)) || die "the task was not requeued: $(records "$j")"; sleep 1
  done
  say "node-loss: node down and task ${j}_0 requeued $((SECONDS - lost)) s after slurmd stopped (its process $pid still there, stopped)"
  # The node comes back with its process still mid-training (as a longer cell would be): the controller must end that
  # process before the requeued task starts. Should it not within 20 s, the process runs on (the node wakes up).
  bash eng/cluster/local-slurm.sh start-node
  local back=$SECONDS state woke=""
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS - back < 120)) || die "the lost node's process $pid still runs"
    if [[ -z $woke ]] && ((SECONDS - back >= 20)); then kill -CONT "$pid"; woke=" (after it ran on: SIGCONT at 20 s)"; fi
    sleep 0.2
  done
  state=$(records "$j" | awk '$1 == 0 { print $2 }')
  say "node-loss: node back; the controller ended the lost node's process $pid within $((SECONDS - back)) s$woke, the requeued task meanwhile $state"
  [[ $state == PENDING ]] || die "the requeued task was $state while the lost node's process still trained"
  finish "$j"; finish "${WAVES[1]}"; finish "$REPORT"
  expect "$j" 0 COMPLETED; expect "${WAVES[1]}" 0 COMPLETED; expect "$REPORT" - COMPLETED
  records "$j" | awk '$4 >= 1 { ok = 1 } END { exit !ok }' || die "the task shows no restart"
  ! grep -q "is being trained by" "$log" || die "the requeued task found the stage still being trained: $(grep -m1 'is being trained by' "$log")"
  # The requeued attempt (the log is appended to) continues the fine-tuning: from its last checkpoint, or finds it
  # finished when the lost node's process completed it before Slurm ended that process; never from step 0.
  local attempt resumed
  attempt=$(awk '/^\[ablations\] dotnet fsi/ { n++ } n >= 2' "$log")
  [[ -n $attempt ]] || die "no second attempt in $log"
  ! grep -q 'training 20 steps (FineTune)' <<< "$attempt" || die "the requeued task trained the fine-tuning from step 0 ($log)"
  if resumed=$(grep -o 'resuming at step [0-9]*/20' <<< "$attempt"); then resumed="${resumed#resuming at }"
  elif grep -q '^\[finetune_.*finished earlier, reused as it is' <<< "$attempt"; then resumed="step 20 (the lost node's process had finished the stage before it was ended)"
  else die "the requeued task neither resumed nor reused the fine-tuning ($log)"; fi
  compare "$dir/results" --cells "$a" "$b"
  PASSED="node-loss"; say "node-loss: PASSED in $((SECONDS - start)) s: requeued; the fine-tuning went on from $resumed, never from 0 nor beside the lost node's process; wave 2 reused the stage; rows equal the local run's"
}

case_bad_cell() {
  local dir=$WORK/bad-cell start=$SECONDS
  local a=label-efficiency.contrastive-finetune.labelled-8.s0 bad=label-efficiency.cross-entropy.labelled-40.s0 b=distortions.contrastive-finetune.distortions-on.s0
  rm -rf "$dir"
  # Bad data that one cell reads: the 40-scene labelled subset, damaged on shared storage.
  local subset=$dir/runs/subsets/fashion-mnist-scenes-train-n40-seed0.txt
  mkdir -p "$(dirname "$subset")"
  for i in $(seq 40); do echo "damaged-$i"; done > "$subset"
  say "bad-cell: $bad reads a damaged $subset; $a and $b do not"
  submit "$dir" "${QUICK[@]}" --cells "$a" "$bad" "$b"
  local j=${WAVES[0]} kb ka
  kb=$(task_of "$dir" 1 "$bad"); ka=$(task_of "$dir" 1 "$a")
  finish "$j"; finish "${WAVES[1]}"; finish "$REPORT"
  expect "$j" "$ka" COMPLETED; expect "$j" "$kb" FAILED
  expect "${WAVES[1]}" 0 CANCELLED; expect "$REPORT" - CANCELLED
  records "${WAVES[1]}" | grep -q DependencyNeverSatisfied || die "wave 2 was not cancelled for its dependency"
  local message; message=$(grep -m1 "subset file $subset has id 'damaged-1'" "$(log_of "$dir" "$j" "$kb")") \
    || die "the failed cell's log does not name the damaged file"
  say "bad-cell: wave 2 and the report cancelled (DependencyNeverSatisfied); the failed task says: $message"

  rm "$subset"   # the fix
  local stages; mapfile -t stages < <(stages_of "$dir/results" "$a")
  ((${#stages[@]})) || die "no stages in $a's row"
  local before; before=$(snapshot "${stages[@]}")
  submit "$dir" "${QUICK[@]}" --cells "$a" "$bad" "$b"
  j=${WAVES[0]}
  finish "$j"; finish "${WAVES[1]}"; finish "$REPORT"
  for job in "${WAVES[@]}" "$REPORT"; do records "$job" | awk '$2 != "COMPLETED" { exit 1 }' || die "job $job: not every task completed"; done
  grep -q "1 reused from" "$(log_of "$dir" "$j" "$ka")" || die "$a was trained again"
  # The finished cell's stages, which wave 2 read, are untouched.
  local changed; changed=$(comm -23 <(echo "$before") <(snapshot "${stages[@]}") | head -5)
  [[ -z $changed ]] || die "files of finished stages changed: $changed"
  compare "$dir/results" --cells "$a" "$bad" "$b"
  PASSED="bad-cell"; say "bad-cell: PASSED in $((SECONDS - start)) s: after the fix only $bad and the cancelled wave ran again ($a reused, its stages untouched); rows equal the local run's"
}

say "cases: ${CASES[*]}; $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
reference
for c in "${CASES[@]}"; do
  [[ $c =~ ^(grid|kill|node-loss|bad-cell)$ ]] || die "unknown case '$c' (all, grid, kill, node-loss, bad-cell)"
  PASSED=""
  "case_${c//-/_}"
  # A case passes by reaching its end (an expansion error leaves a function without tripping set -e).
  [[ $PASSED == "$c" ]] || die "case $c stopped before its end"
  rm -rf "$WORK/$c/runs"   # 40-300 MB of checkpoints; a failed case keeps them, and its rows and logs stay
done
say "all passed (${CASES[*]}) in $((SECONDS - T0)) s; load $(cut -d' ' -f1-3 /proc/loadavg)"
