# t2100: a GGUF whose two tensors overlap and are named with terminal escape sequences
# (ESC [ ... m colours, an OSC title ESC ] 0 ; ... BEL): every tool refuses it, names
# the overlap, and writes no raw control byte to stdout or stderr (names go out escaped
# by cli_fail).  apr-hash prints its own errors (inspect/hash.c, being split by s9b): to be
# added here once they go through cli_fail / cli_put_text.
. tests/cli/lib.sh

H=$FIX/hostile.gguf
# GGUF v3, 2 tensors, 0 keys; each tensor: name, 1 dim of 8, F32, offset 0 (they overlap)
{
    printf 'GGUF\003\000\000\000\002\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000'
    printf '\016\000\000\000\000\000\000\000a\033]0;pwned\007xyz'
    printf '\001\000\000\000\010\000\000\000\000\000\000\000\000\000\000\000'
    printf '\000\000\000\000\000\000\000\000'
    printf '\011\000\000\000\000\000\000\000b\033[31mred'
    printf '\001\000\000\000\010\000\000\000\000\000\000\000\000\000\000\000'
    printf '\000\000\000\000\000\000\000\000'
} > "$H"
sz=$(wc -c < "$H")
head -c $(( (32 - sz % 32) % 32 + 32 )) /dev/zero >> "$H"

# raw C0 controls other than \n and \t, DEL, and the 8-bit CSI/OSC (0x9b, 0x9d)
raw() { LC_ALL=C tr -d '\n\t' < "$1" | LC_ALL=C grep -c "$(printf '[\001-\037\177\233\235]')"; }

for cmd in "apr-inspect $H" "apr-inspect --json $H" "apr-convert $H $FIX/o.apr" \
           "apr-convert --dry-run $H $FIX/o.gguf" "apr-diff $H $H"; do
    case $cmd in apr-diff*) want=2 ;; *) want=1 ;; esac   # diff(1): 2 is trouble
    expect_exit "$cmd: refused" $want "$cmd"
    testing "$cmd: no raw control byte" "$cmd >$FIX/out 2>$FIX/err; cat $FIX/out $FIX/err > $FIX/all; raw() { LC_ALL=C tr -d '\n\t' < \$1 | LC_ALL=C grep -c \"\$(printf '[\\001-\\037\\177\\233\\235]')\"; }; raw $FIX/all" "0"
done
expect_match "the overlap is named, escaped" "tensor 'b\\\\x1b\\[31mred' overlaps tensor 'a\\\\x1b\\]0;pwned\\\\x07xyz'" "apr-inspect $H"
