#!/usr/bin/env bash
# Every path .gitignore keeps out of the repository (build folders, training runs, GPU scratch,
# compile_commands.json) must stay out of every Docker build context too. BuildKit reads
# <Dockerfile>.dockerignore instead of the root .dockerignore, so each file is checked.
#   dockerignore_check.sh SOURCE_DIR
set -u
root=$1
status=0
for ignore in "$root/.dockerignore" "$root/deploy/Dockerfile.dockerignore" \
              "$root/deploy/Dockerfile.cuda.dockerignore"; do
  [[ -f $ignore ]] || { echo "missing $ignore"; status=1; continue; }
  while IFS= read -r pattern; do
    [[ -z $pattern || $pattern == \#* ]] && continue
    bare=${pattern#/}
    bare=${bare%/}
    # A root pattern (/x/) must appear as x; one that matches at any depth (*.tmp) as itself or
    # under **/.
    if ! grep -qxF -e "$bare" -e "**/$bare" "$ignore"; then
      echo "$ignore: lacks \"$bare\" (ignored by .gitignore as \"$pattern\")"
      status=1
    fi
  done < "$root/.gitignore"
done
(( status == 0 )) && echo "every .gitignore pattern is in the three .dockerignore files"
exit $status
