#!/usr/bin/env bash
# A real one-node Slurm on this machine (slurmctld + slurmd on 127.0.0.1, a munged with its own key), to run
# eng/cluster/slurm-array.sh as on a cluster: CI's Slurm step (eng/cluster/slurm-ci.sh), or by hand. As root, on
# Debian or Ubuntu: it installs slurmctld, slurmd, slurm-client and munge from the distribution (Debian 12: 22.05).
#
#   bash eng/cluster/local-slurm.sh start    # install if needed, configure, start, wait for the node; then
#   export SLURM_CONF=/tmp/contrastseg-slurm/slurm.conf   # (what start prints) for sbatch, squeue, scancel
#   bash eng/cluster/local-slurm.sh stop     # cancel its jobs, kill what is left of them, stop its daemons
#   bash eng/cluster/local-slurm.sh stop-node | start-node   # slurmd alone (a lost node; its jobs keep running)
#   bash eng/cluster/local-slurm.sh status
#
# Everything is in LOCAL_SLURM_DIR (default /tmp/contrastseg-slurm): slurm.conf, the munge key and socket, the
# controller's state, slurmd's spool, pid files and log/. Nothing under /etc is written, and a Slurm or munged
# already on the machine is left alone (LOCAL_SLURM_PORT, default 6817 and the next one, if it uses those ports).
set -euo pipefail

DIR=${LOCAL_SLURM_DIR:-/tmp/contrastseg-slurm}
CONF=$DIR/slurm.conf
PORT=${LOCAL_SLURM_PORT:-6817}
NODE=$(hostname -s)
export SLURM_CONF=$CONF

say() { echo "[local-slurm] $*"; }
fail() { echo "[local-slurm] error: $*" >&2; exit 1; }

# A pid file's process if it is alive and is that daemon (a pid can be reused after a crash).
daemon_pid() {
  local file=$DIR/$1.pid pid
  [[ -s $file ]] || return 1
  pid=$(< "$file")
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "$1" && echo "$pid"
}

# Whether a process ended within 10 s.
gone() {
  local i
  for ((i = 0; i < 20; i++)); do [[ -d /proc/$1 ]] || return 0; sleep 0.5; done
  return 1
}

# Processes of this cluster's jobs: slurmstepd and everything a job started carry this slurm.conf in their
# environment (the daemons start with it; sbatch passes the submitter's on), jobs with their SLURM_JOB_ID.
job_pids() {
  local p env
  for p in /proc/[0-9]*; do
    env=$( { tr '\0' '\n' < "$p/environ"; } 2>/dev/null) || continue   # kernel threads, ended processes
    grep -qx "SLURM_CONF=$CONF" <<< "$env" || continue
    if grep -q '^SLURM_JOB_ID=' <<< "$env" || [[ $(readlink "$p/exe" 2>/dev/null) == */slurmstepd ]]; then echo "${p#/proc/}"; fi
  done
}

install() {
  local missing=() c
  for c in slurmctld slurmd sbatch munged mungekey; do command -v "$c" >/dev/null || missing+=("$c"); done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || fail "${missing[*]} not found and no apt-get: install Slurm and munge"
  say "installing slurmctld slurmd slurm-client munge (missing: ${missing[*]})"
  # The packages' services would start with /etc's configuration: keep them stopped during the install.
  local policy=/usr/sbin/policy-rc.d ours=0
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; ours=1; fi
  local packages=(slurmctld slurmd slurm-client munge) ok=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" && ok=1
  if ((!ok)); then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" && ok=1
  fi
  ((ours)) && rm -f "$policy"
  ((ok)) || fail "apt-get could not install ${packages[*]}"
}

write_conf() {
  # The node as slurmd sees it (CPUs, sockets, cores, threads); RealMemory a little below what is free now, so
  # slurmd never finds less memory than configured (it would drain the node).
  local node mem free
  node=$(slurmd -C | head -1)
  [[ $node == NodeName=* ]] || fail "slurmd -C printed no node line: $node"
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<< "$node")
  free=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
  ((free < mem)) && mem=$free
  mem=$((mem - 512))
  node=$(sed -e "s/^NodeName=[^ ]*/NodeName=$NODE NodeAddr=127.0.0.1/" -e "s/RealMemory=[0-9]*/RealMemory=$mem/" <<< "$node")
  cat > "$CONF" <<EOF
# Written by eng/cluster/local-slurm.sh: one node on 127.0.0.1, daemons as root, no cgroups, no accounting.
ClusterName=contrastseg-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
AuthType=auth/munge
# cred_expire is also how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=30
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# A node silent for 15 s is down; its batch jobs are requeued, and it serves again once slurmd registers.
SlurmdTimeout=15
ReturnToService=2
JobRequeue=1
# Pending jobs are looked at every few seconds (defaults: 60 and 30 s), not only when a job starts or ends.
SchedulerParameters=sched_interval=10,bf_interval=5
# Finished jobs stay visible to scontrol for an hour (there is no accounting database for sacct).
MinJobAge=3600
$node State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

wait_node() {
  local state="" i
  for ((i = 0; i < 60; i++)); do
    state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null || true)
    case $state in idle|mixed|allocated) return 0 ;; esac
    sleep 1
  done
  say "node $NODE not up after 60 s (state '${state}'); logs:"
  tail -n 20 "$DIR"/log/*.log >&2 || true
  return 1
}

start() {
  [[ $(id -u) -eq 0 ]] || fail "run as root (the daemons run as root and it installs packages)"
  if daemon_pid slurmctld >/dev/null; then
    say "already running ($CONF)"; wait_node; echo "export SLURM_CONF=$CONF"; return 0
  fi
  install
  local started=$SECONDS
  # A fresh cluster: no jobs or node states from an earlier start.
  rm -rf "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/munge"
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/munge"
  chmod 755 "$DIR" "$DIR/munge"   # munged wants its socket's folders executable for everyone
  mungekey --create --keyfile="$DIR/munge/munge.key" >/dev/null
  munged --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munged.pid" \
         --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
  munge -n -S "$DIR/munge/munge.socket" | unmunge -S "$DIR/munge/munge.socket" >/dev/null || fail "munged does not answer (see $DIR/log/munged.log)"
  write_conf
  slurmctld -f "$CONF" || fail "slurmctld did not start (see $DIR/log/slurmctld.log)"
  slurmd -f "$CONF" || fail "slurmd did not start (see $DIR/log/slurmd.log)"
  wait_node || fail "the node did not come up"
  say "up in $((SECONDS - started)) s: $(sinfo -h -N -o '%N %T, %c CPUs, %m MB') (Slurm $(sinfo -V | awk '{print $2}'))"
  echo "export SLURM_CONF=$CONF"
}

stop() {
  local pids i d pid
  # Jobs first, while slurmd can still signal them (TERM, then KILL after KillWait).
  if daemon_pid slurmctld >/dev/null && squeue -h >/dev/null 2>&1; then
    mapfile -t pids < <(squeue -h -o %i)
    if ((${#pids[@]})); then
      say "cancelling jobs: ${pids[*]}"
      scancel "${pids[@]}" 2>/dev/null || true
      for ((i = 0; i < 40 && $(squeue -h | wc -l) > 0; i++)); do sleep 1; done
    fi
  fi
  # What a job left (slurmd was down, or the jobs did not end in time).
  mapfile -t pids < <(job_pids)
  if ((${#pids[@]})); then say "killing leftover job processes: ${pids[*]}"; kill -9 "${pids[@]}" 2>/dev/null || true; fi
  for d in slurmd slurmctld munged; do
    pid=$(daemon_pid "$d") || continue
    kill "$pid" 2>/dev/null || true
    gone "$pid" || kill -9 "$pid" 2>/dev/null || true
    say "stopped $d ($pid)"
  done
  rm -f "$DIR"/{slurmd,slurmctld,munged}.pid
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  stop-node)
    pid=$(daemon_pid slurmd) || fail "slurmd is not running"
    kill "$pid"
    gone "$pid" || fail "slurmd ($pid) did not stop"
    say "slurmd ($pid) stopped; its jobs keep running until the controller takes the node for lost"
    ;;
  start-node)
    daemon_pid slurmd >/dev/null && fail "slurmd is already running"
    slurmd -f "$CONF" || fail "slurmd did not start (see $DIR/log/slurmd.log)"
    say "slurmd started"
    ;;
  status)
    if daemon_pid slurmctld >/dev/null; then sinfo -N -l; squeue; else say "not running ($DIR)"; fi
    ;;
  *) echo "usage: bash $0 start|stop|stop-node|start-node|status" >&2; exit 2 ;;
esac
