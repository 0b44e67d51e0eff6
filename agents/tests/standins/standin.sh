# standin.sh: sourced by the stand-in vendor tools of haagents' tests (never
# run alone). Reads the mode from $STANDIN_DIR/mode (up, down or hang;
# default up), logs the call as "TOOL MODE ARGS..." to $STANDIN_DIR/calls,
# and in hang mode never answers: it waits for a child `sleep` in its own
# process group, whose pid it writes to $STANDIN_DIR/hung.pid (its own to
# hung-tool.pid), so a test can check that the agent's timeout killed the
# whole group.
: "${STANDIN_DIR:?STANDIN_DIR is not set}"
MODE=$(cat "$STANDIN_DIR/mode" 2>/dev/null || echo up)
TOOL=$(basename "$0")
echo "$TOOL $MODE $*" >> "$STANDIN_DIR/calls"
if [ "$MODE" = hang ]; then
    echo $$ > "$STANDIN_DIR/hung-tool.pid"
    sleep 1000 &
    echo $! > "$STANDIN_DIR/hung.pid"
    wait
    exit 1
fi
