#!/bin/bash
# Alternated A/B pairs (order flipped each pair) of `mailstore import` of an mbox into a new mdbox store,
# two builds, under GNU time: one line per run, "label wall_s user_s sys_s peak_rss_kb".
# usage: import-pairs.sh BASE_TREE NEW_TREE PAIRS fresh|indexed MBOX_DIR WORK_DIR
#   MBOX_DIR holds `inbox` (e.g. from bench/dovecot.ts writeSampleMbox(file, 100000, 2250), as vs-dovecot makes it)
#   and `mail/`; fresh: the source's index (mail/.imap) is removed before each run, so the import's first sync
#   scans and indexes the whole mbox; indexed: the source keeps the index the previous run wrote.
set -euo pipefail
BASE=$1 NEW=$2 N=$3 MODE=$4 SD=$5 WORK=$6
S="mbox:$SD/mail:INBOX=$SD/inbox"
run() {
  rm -rf "$WORK/T"
  if [ "$MODE" = fresh ]; then rm -rf "$SD/mail/.imap"; fi
  /usr/bin/time -f "$1 %e %U %S %M" -o "$WORK/time.out" node "$2/bin/mailstore.js" -l "mdbox:$WORK/T" import "$S" >/dev/null
  cat "$WORK/time.out"
}
for i in $(seq 1 "$N"); do
  if [ $((i % 2)) = 1 ]; then run base "$BASE"; run new "$NEW"; else run new "$NEW"; run base "$BASE"; fi
done
